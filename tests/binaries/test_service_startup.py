"""tests/service/test_startup.py, run against the native binaries (see conftest.py)."""
from service.test_startup import *  # noqa: F401,F403
