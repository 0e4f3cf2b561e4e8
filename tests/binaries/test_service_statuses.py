"""tests/service/test_statuses.py, run against the native binaries (see conftest.py)."""
from service.test_statuses import *  # noqa: F401,F403
