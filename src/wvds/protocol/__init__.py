"""The wire protocol, defined once.

`constants` holds every number on the wire (the C header's constants are
generated from it), `header` the 8-byte frame header, `payloads` the layout of
every request and response payload. docs/protocol.md is the prose reference.
"""
from wvds.protocol.constants import *  # noqa: F401,F403
from wvds.protocol.header import *  # noqa: F401,F403
