"""tests/service/test_fast_path.py, run against the native binaries (see conftest.py)."""
from service.test_fast_path import *  # noqa: F401,F403
