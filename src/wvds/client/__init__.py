"""Python client of crypto_service: typed operations over the C library's transport."""
from wvds.client.client import Client, ServiceStatusError, TransportFailure  # noqa: F401
