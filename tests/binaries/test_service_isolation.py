"""tests/service/test_isolation.py, run against the native binaries (see conftest.py)."""
from service.test_isolation import *  # noqa: F401,F403
