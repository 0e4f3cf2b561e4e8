"""Debian 12 build roots for the native binaries, see docs/binaries.md."""
