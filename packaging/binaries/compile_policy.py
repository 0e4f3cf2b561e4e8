"""Nuitka user plugin: what becomes C.

Compilation: Nuitka turns every module it compiles into a C file, and gcc is most
of a build's time: asn1crypto alone becomes ~25 MB of C (core.c 6 MB), more than
all of `wvds`. Third-party packages are public source that gains nothing from
being compiled, so they go in as bytecode, as Nuitka already does for the
standard library; only `wvds.*` (and the entry point) become native code.

The TPM stack (tpm2-tss) is not a link-time dependency of anything compiled here:
wvds.tpm2 opens the device's libtss2-* by soname at run time (docs/binaries.md).

Used as `--user-plugin=packaging/binaries/compile_policy.py`.
"""
from nuitka.plugins.PluginBase import NuitkaPluginBase

COMPILED = ("wvds", "__main__", "__parents_main__")


class WvdsCompilePolicy(NuitkaPluginBase):
    plugin_name = "wvds-compile-policy"
    plugin_desc = "Compile wvds.* to C, third-party packages as bytecode."

    @staticmethod
    def isAlwaysEnabled():
        return True

    def decideCompilation(self, module_name):
        if module_name.hasOneOfNamespaces(*COMPILED):
            return "compiled"
        if "-" in module_name.asString():  # Nuitka's own pre/post-load trigger modules: its choice
            return None
        return "bytecode"
