"""tests/conformance/test_liboqs.py, run against the native binaries of both architectures (see conftest.py):
the counts per architecture go to build/conformance/<arch>-binary.json."""
from conformance.conftest import conformance_counts, tally  # noqa: F401
from conformance.test_liboqs import *  # noqa: F401,F403
