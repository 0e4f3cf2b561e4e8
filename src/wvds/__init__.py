"""WvdS Crypto Service: post-quantum crypto service for edge gateways."""
from wvds.version import VERSION as __version__  # noqa: F401
