from wvds.protocol.constants import Status


class ServiceError(Exception):
    """An expected failure of one request: answered with .status, logged with .message (no secrets)."""

    def __init__(self, status: Status, message: str = ""):
        super().__init__(message or status.name)
        self.status = status
        self.message = message or status.name


class ConfigError(Exception):
    """config.json is unusable; the message names the file, the field and what is wrong."""
