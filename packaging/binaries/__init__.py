"""Build steps of the native binaries (Nuitka), see docs/binaries.md."""
