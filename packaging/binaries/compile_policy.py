"""Nuitka user plugin: what becomes C, and which outside libraries the binaries carry.

Compilation: Nuitka turns every module it compiles into a C file, and gcc is most
of a build's time: asn1crypto alone becomes ~25 MB of C (core.c 6 MB), more than
all of `wvds`. Third-party packages are public source that gains nothing from
being compiled, so they go in as bytecode, as Nuitka already does for the
standard library; only `wvds.*` (and the entry point) become native code.

Outside libraries: tpm2-pytss is built against the root's tpm2-tss. Its libraries
are not bundled: libtss2-fapi alone drags in libcurl, GnuTLS, Kerberos and more
(~12 MB, and further crypto libraries), and the TPM stack (TSS, TCTI modules,
resource manager) belongs to the device platform like the PKCS#11 module does.
The TPM backend therefore needs the device's tpm2-tss libraries (Debian:
libtss2-esys-3.0.2-0, libtss2-fapi1, libtss2-tctildr0); without them, configuring
that backend fails with "the tpm backend is not installed (...)" and every other
backend works (docs/binaries.md). (Nuitka's own rule, "no outside libraries for
pip-installed packages", does not apply here: with Debian's python, sys.prefix is
/usr and every system library counts as part of the Python installation.)

Used as `--user-plugin=packaging/binaries/compile_policy.py`.
"""
import os

from nuitka.plugins.PluginBase import NuitkaPluginBase

COMPILED = ("wvds", "__main__", "__parents_main__")
DEVICE_STACK_USERS = ("_libtpm2_pytss.",)  # extension modules whose libraries come from the device


class WvdsCompilePolicy(NuitkaPluginBase):
    plugin_name = "wvds-compile-policy"
    plugin_desc = "Compile wvds.* to C, third-party packages as bytecode; the TPM stack stays on the device."

    @staticmethod
    def isAlwaysEnabled():
        return True

    def decideCompilation(self, module_name):
        if module_name.hasOneOfNamespaces(*COMPILED):
            return "compiled"
        if "-" in module_name.asString():  # Nuitka's own pre/post-load trigger modules: its choice
            return None
        return "bytecode"

    def removeDllDependencies(self, dll_filename, dll_filenames):
        if os.path.basename(dll_filename).startswith(DEVICE_STACK_USERS):
            # everything it needs beyond what other parts need (libcrypto, libffi) stays on the device
            yield from dll_filenames
