"""OpenSSL 3.6 with the FIPS provider, built for the WvdS Crypto Service.

One recipe for every target: the host profile (toolchains/<arch>/host.profile)
picks the cross compiler and the hardening flags. The package is laid out for
installation under /opt/wvds (compiled-in paths point there, never at the build
machine), and every binary finds its libraries through $ORIGIN-relative RUNPATHs,
so nothing of the build host's OpenSSL can be picked up at run time.
"""
import os
import shutil
import subprocess
import sys

from conan import ConanFile
from conan.errors import ConanException
from conan.tools.files import copy, rmdir

sys.path.insert(0, os.path.dirname(__file__))
import fetch  # noqa: E402  (lives next to this recipe and is exported with it)

# Compiled-in locations. They must be the device's paths, not this machine's.
INSTALL_PREFIX = "/opt/wvds"
OPENSSLDIR = "/etc/opt/wvds/ssl"
CONFIGURE_TARGETS = {"x86_64": "linux-x86_64", "armv8": "linux-aarch64"}


class OpenSSLFipsConan(ConanFile):
    name = "openssl"
    version = "3.6.3"
    description = "OpenSSL 3.6 shared libraries, CLI and FIPS provider (fips.so)"
    license = "Apache-2.0"
    package_type = "shared-library"
    settings = "os", "arch", "compiler", "build_type"
    exports = "fetch.py", "openssl-release-signing-keys.asc"
    no_copy_source = True  # OpenSSL builds out of tree; the source stays pristine

    def configure(self):
        self.settings.rm_safe("compiler.libcxx")
        self.settings.rm_safe("compiler.cppstd")

    def validate(self):
        if str(self.settings.os) != "Linux" or str(self.settings.arch) not in CONFIGURE_TARGETS:
            raise ConanException(f"unsupported target {self.settings.os}/{self.settings.arch}")

    def source(self):
        data = self.conan_data["sources"][self.version]
        tarball = os.path.join(self.source_folder, data["filename"])
        fetch.fetch(data, tarball, log=self.output.info)
        fetch.verify_signature(tarball, os.path.join(self.recipe_folder, "openssl-release-signing-keys.asc"),
                               log=self.output.info)
        self.run(f"tar -xzf {tarball} --strip-components=1 -C {self.source_folder}")
        os.unlink(tarball)
        if os.path.exists(tarball + ".asc"):
            os.unlink(tarball + ".asc")

    # -- build ---------------------------------------------------------------
    def _cc(self) -> str:
        cc = self.conf.get("tools.build:compiler_executables", default={}, check_type=dict).get("c", "gcc")
        if shutil.which("ccache") and os.environ.get("WVDS_CCACHE", "1") != "0":
            return f"ccache {cc}"
        return cc

    def _tool(self, name: str) -> str:
        """binutils matching the compiler: aarch64-linux-gnu-gcc -> aarch64-linux-gnu-strip."""
        cc = self._cc().split()[-1]
        return cc[: -len("gcc")] + name if cc.endswith("gcc") else name

    def _flags(self) -> list[str]:
        get = lambda key: self.conf.get(key, default=[], check_type=list)  # noqa: E731
        # Configure takes -f/-D/-m flags as compiler flags and -Wl, flags as linker flags.
        return get("tools.build:cflags") + get("tools.build:sharedlinkflags")

    def build(self):
        target = CONFIGURE_TARGETS[str(self.settings.arch)]
        opts = [
            target, "enable-fips", "shared", "no-tests", "no-docs",
            f"--prefix={INSTALL_PREFIX}", f"--openssldir={OPENSSLDIR}", "--libdir=lib",
        ]
        if self.settings.build_type == "Debug":
            opts.append("--debug")
        opts += self._flags()
        env = dict(os.environ, CC=self._cc(), AR=self._tool("ar"), RANLIB=self._tool("ranlib"))
        env.pop("CFLAGS", None)
        env.pop("LDFLAGS", None)
        env.setdefault("CCACHE_BASEDIR", os.environ.get("CONAN_HOME", os.path.expanduser("~")))
        configure = os.path.join(self.source_folder, "Configure")
        self.output.info(f"Configure {' '.join(opts)} (CC={env['CC']})")
        subprocess.run(["perl", configure, *opts], cwd=self.build_folder, env=env, check=True)
        jobs = self.conf.get("tools.build:jobs", default=os.cpu_count() or 1)
        subprocess.run(["make", f"-j{jobs}", "build_sw"], cwd=self.build_folder, env=env, check=True)

    # -- package -------------------------------------------------------------
    def package(self):
        stage = os.path.join(self.build_folder, "stage")
        rmdir(self, stage)
        subprocess.run(["make", "install_sw", f"DESTDIR={stage}"], cwd=self.build_folder, check=True,
                       stdout=subprocess.DEVNULL)
        root = os.path.join(stage, INSTALL_PREFIX.lstrip("/"))
        pkg = self.package_folder
        copy(self, "openssl", os.path.join(root, "bin"), os.path.join(pkg, "bin"))
        copy(self, "*.h", os.path.join(root, "include"), os.path.join(pkg, "include"))
        copy(self, "lib*.so*", os.path.join(root, "lib"), os.path.join(pkg, "lib"))
        copy(self, "*.so", os.path.join(root, "lib", "ossl-modules"), os.path.join(pkg, "lib", "ossl-modules"))
        copy(self, "*.pc", os.path.join(root, "lib", "pkgconfig"), os.path.join(pkg, "lib", "pkgconfig"))
        # install_sw leaves the FIPS module out (install_fips would also write a
        # fipsmodule.cnf for *this* machine, which must never be shipped).
        copy(self, "fips.so", os.path.join(self.build_folder, "providers"), os.path.join(pkg, "lib", "ossl-modules"))
        copy(self, "LICENSE.txt", self.source_folder, os.path.join(pkg, "licenses"))
        self._fix_runpaths(pkg)

    def _fix_runpaths(self, pkg: str) -> None:
        """$ORIGIN-relative RUNPATHs, stripped symbols; fips.so is stripped before any fipsinstall."""
        strip = self._tool("strip")
        lib = os.path.join(pkg, "lib")
        targets = {
            os.path.join(pkg, "bin", "openssl"): "$ORIGIN/../lib",
            os.path.join(lib, "libssl.so.3"): "$ORIGIN",
            os.path.join(lib, "libcrypto.so.3"): None,
            os.path.join(lib, "ossl-modules", "legacy.so"): "$ORIGIN/..",
            os.path.join(lib, "ossl-modules", "fips.so"): None,
        }
        for path, runpath in targets.items():
            if not os.path.exists(path):
                continue
            if self.settings.build_type != "Debug":
                subprocess.run([strip, "--strip-unneeded", path], check=True)
            if runpath:
                subprocess.run(["patchelf", "--set-rpath", runpath, path], check=True)

    def package_info(self):
        self.cpp_info.libs = ["ssl", "crypto"]
        self.cpp_info.set_property("cmake_file_name", "OpenSSL")
        self.cpp_info.set_property("pkg_config_name", "openssl")
        self.runenv_info.define_path("OPENSSL_MODULES", os.path.join(self.package_folder, "lib", "ossl-modules"))
