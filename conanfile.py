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
        # The build runs this step every time, beside compilers reading these headers: leave
        # the copy alone when it is already of this package, so a warm build never sees it vanish.
        ossl = self.dependencies["openssl"]
        dst = os.path.join(self.generators_folder, "openssl")
        stamp = os.path.join(dst, ".conan-package")
        ident = f"{ossl.ref} {ossl.package_folder}\n"
        if os.path.isfile(stamp) and open(stamp).read() == ident and _same_files(ossl.package_folder, dst):
            return
        if os.path.isdir(dst):
            import shutil
            shutil.rmtree(dst)
        copy(self, "*", ossl.package_folder, dst)
        with open(stamp, "w") as f:
            f.write(ident)


def _same_files(src: str, dst: str) -> bool:
    """Every file of src is in dst with the same size (a copy nobody has thinned out since)."""
    for root, _, files in os.walk(src):
        for name in files:
            a = os.path.join(root, name)
            b = os.path.join(dst, os.path.relpath(a, src))
            if os.path.islink(a):
                if not os.path.islink(b):
                    return False
            elif not os.path.isfile(b) or os.path.getsize(a) != os.path.getsize(b):
                return False
    return True
