"""tests/service/test_operations.py, run against the native binaries (see conftest.py)."""
from service.test_operations import *  # noqa: F401,F403
