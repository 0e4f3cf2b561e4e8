"""tests/service/test_aes_jobs.py, run against the native binaries (see conftest.py)."""
from service.test_aes_jobs import *  # noqa: F401,F403
