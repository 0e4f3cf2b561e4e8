import sys

from wvds.crypto_service.main import main

sys.exit(main())
