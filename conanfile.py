"""C/C++ dependencies of the WvdS Crypto Service, resolved by Conan 2.

SCons runs `conan install` once per target architecture (see SConstruct); this
file says what we need and where the build tree gets it. The OpenSSL recipe is
local (recipes/openssl) because no Conan remote is reachable from the build machines.
"""
import os
import re

from conan import ConanFile
from conan.tools.files import copy


class WvdsCryptoServiceDeps(ConanFile):
    name = "wvds-crypto-service"
    settings = "os", "arch", "compiler", "build_type"

    def set_version(self):
        text = open(os.path.join(self.recipe_folder, "src", "wvds", "version.py")).read()
        self.version = re.search(r'^VERSION = "([^"]+)"', text, re.M).group(1)

    def requirements(self):
        self.requires("openssl/3.6.3")

    def generate(self):
        # Copy the OpenSSL package into the build tree (build/<arch>/openssl) so the
        # rest of the build and the tests use one stable path per architecture.
        ossl = self.dependencies["openssl"]
        dst = os.path.join(self.generators_folder, "openssl")
        if os.path.isdir(dst):
            import shutil
            shutil.rmtree(dst)
        copy(self, "*", ossl.package_folder, dst)
