"""Typed fields of a JSON configuration, and loading the file: one reader for all our settings.

crypto_service's config.json, est_service's and the `keystore` section read their fields
through `Fields`, so they agree on what a user sees:
- every problem is collected as "field.path: what is wrong" and all are reported at once;
- a JSON null means the same as leaving the field out: an optional field takes its default,
  a required one is reported as missing, by its name (never as "must be a string, got null");
- a value of the wrong type or out of range is shown as the JSON the user wrote;
- fields nobody read are reported as unknown (usually typos).
"""
from __future__ import annotations

import json
import os
from typing import Any

_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
               dict: "an object", (int, float): "a number"}
_JSON_TYPES = {type(None): "null", str: "string", bool: "boolean", int: "number", float: "number", list: "list"}


def kind_name(kind) -> str:
    return _KIND_NAMES.get(kind, str(kind))


def shown(value: Any) -> str:
    """The value as the user wrote it (JSON), for messages."""
    return json.dumps(value, default=repr)


def absolute_path(value: str) -> bool:
    return os.path.isabs(value) and "\0" not in value  # a NUL byte would fail later, at bind/open time


class Fields:
    """Reads typed fields from one JSON object, collecting errors with their path."""

    missing = "required"  # the message for a required field that is absent or null

    def __init__(self, obj: Any, path: str, errors: list[str]):
        self.location, self.errors = path, errors  # location: where the object is ("limits.rate_limit")
        if not isinstance(obj, dict):
            got = _JSON_TYPES.get(type(obj), type(obj).__name__)
            errors.append(f"{path or '(top level)'}: must be an object, got {got}")
            obj = {}
        self.obj = obj
        self.seen: set[str] = set()

    def where(self, key: str) -> str:
        return f"{self.location + '.' if self.location else ''}{key}"

    def err(self, key: str, msg: str) -> None:
        self.errors.append(f"{self.where(key)}: {msg}")

    def has(self, key: str) -> bool:
        """The field is given (present and not null)."""
        return self.obj.get(key) is not None

    def get(self, key: str, kind, default=None, check=None, why: str = "", required: bool = False):
        """The value if it has the kind and passes check, else the default (and an error if it was given)."""
        self.seen.add(key)
        value = self.obj.get(key)
        if value is None:
            if required:
                self.err(key, self.missing)
            return default
        numeric = kind in (int, float, (int, float))
        if not isinstance(value, kind) or (numeric and isinstance(value, bool)):
            self.err(key, f"must be {kind_name(kind)}, got {shown(value)}")
            return default
        if check is not None and not check(value):
            self.err(key, why or f"invalid value {shown(value)}")
            return default
        return value

    def sub(self, key: str) -> "Fields":
        """The fields of a nested object (absent or null: an empty one, so every default applies)."""
        self.seen.add(key)
        value = self.obj.get(key)
        return Fields({} if value is None else value, self.where(key), self.errors)

    def unknown(self, message: str = "unknown field (misspelled?)") -> None:
        for key in sorted(set(self.obj) - self.seen):
            self.err(key, message)


def load_json(path: str, error: type[Exception]) -> Any:
    """The parsed document of a configuration file; `error` with "<path>: <problem>" if there is none."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except PermissionError:
        raise error(f"{path}: permission denied") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise error(f"{path}: line {e.lineno} column {e.colno}: invalid JSON: {e.msg}") from None
    except (ValueError, RecursionError) as e:  # integers over 4300 digits, nesting deeper than the stack
        raise error(f"{path}: invalid JSON: {e}") from None
