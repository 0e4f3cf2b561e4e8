"""`python -m wvds PROGRAM [ARGS...]`: the multi-call entry point from source (see wvds.main)."""
import sys

from wvds.main import main

sys.exit(main())
