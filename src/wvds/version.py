"""The product version: the one place it is defined.

SCons, conanfile.py, the packaging scripts, the programs' --version output and
the generated C header all read it from here.
"""

VERSION = "0.2.0"
