import sys

from wvds.est_service.main import main

sys.exit(main())
