"""tests/service/test_replay.py, run against the native binaries (see conftest.py)."""
from service.test_replay import *  # noqa: F401,F403
