"""tests/service/test_c_example.py, run against the native binaries (see conftest.py)."""
from service.test_c_example import *  # noqa: F401,F403
