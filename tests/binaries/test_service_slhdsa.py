"""tests/service/test_slhdsa.py, run against the native binaries (see conftest.py)."""
from service.test_slhdsa import *  # noqa: F401,F403
