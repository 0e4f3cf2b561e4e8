"""liboqs 0.16.0, for the tests only: the independent second implementation of ML-KEM, ML-DSA and
SLH-DSA that the conformance tests hold the service against (docs/conformance.md).

Built without OpenSSL (OQS_USE_OPENSSL=OFF: its own SHA-2/SHA-3/AES), so that an error two OpenSSL
builds share cannot hide in both sides, and with only the algorithms the tests use. Never part of
the delivery.
"""
import os
import sys

from conan import ConanFile
from conan.errors import ConanException

sys.path.insert(0, os.path.dirname(__file__))
import tree  # noqa: E402  (lives next to this recipe and is exported with it)

ALGORITHMS = ["KEM_ml_kem_512", "KEM_ml_kem_768", "KEM_ml_kem_1024", "SIG_ml_dsa_44", "SIG_ml_dsa_65",
              "SIG_ml_dsa_87"] + [f"SIG_slh_dsa_pure_{h}_{n}{v}" for h in ("sha2", "shake") for n in (128, 192, 256)
                                   for v in "sf"]


class LiboqsConan(ConanFile):
    name = "liboqs"
    version = "0.16.0"
    description = "liboqs (Open Quantum Safe), minimal build: ML-KEM, ML-DSA, SLH-DSA; test-only"
    license = "MIT"
    package_type = "shared-library"
    settings = "os", "arch", "compiler", "build_type"
    exports = "tree.py"

    def configure(self):
        self.settings.rm_safe("compiler.libcxx")
        self.settings.rm_safe("compiler.cppstd")

    def validate(self):
        if str(self.settings.os) != "Linux":
            raise ConanException("liboqs is built for the Linux test host only")

    def source(self):
        data = self.conan_data["sources"][self.version]
        staging = os.path.join(self.source_folder, "liboqs")
        tree.fetch_tree(data, staging, log=self.output.info)

    def build(self):
        src = os.path.join(self.source_folder, "liboqs")
        opts = {"CMAKE_BUILD_TYPE": "Release", "BUILD_SHARED_LIBS": "ON", "OQS_BUILD_ONLY_LIB": "ON",
                "OQS_USE_OPENSSL": "OFF", "OQS_DIST_BUILD": "ON", "OQS_MINIMAL_BUILD": ";".join(ALGORITHMS),
                "CMAKE_INSTALL_LIBDIR": "lib"}
        defs = " ".join(f'-D{k}="{v}"' for k, v in opts.items())
        out = os.path.join(self.build_folder, "cmake")
        self.run(f'cmake -S "{src}" -B "{out}" -G Ninja {defs}')
        self.run(f'cmake --build "{out}" -j{os.cpu_count() or 2}')

    def package(self):
        self.run(f'cmake --install "{os.path.join(self.build_folder, "cmake")}" --prefix "{self.package_folder}"')

    def package_info(self):
        self.cpp_info.libs = ["oqs"]
