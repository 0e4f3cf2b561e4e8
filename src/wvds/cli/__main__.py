import sys

from wvds.cli.wvdsctl import main

sys.exit(main())
