"""tests/service/test_kat.py, run against the native binaries (see conftest.py)."""
from service.test_kat import *  # noqa: F401,F403
