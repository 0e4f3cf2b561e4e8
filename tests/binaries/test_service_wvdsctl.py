"""tests/service/test_wvdsctl.py, run against the native binaries (see conftest.py)."""
from service.test_wvdsctl import *  # noqa: F401,F403
