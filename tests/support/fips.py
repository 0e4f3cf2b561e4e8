"""Generate a FIPS-mode OpenSSL configuration the way a device does at install time.

`openssl fipsinstall` runs the FIPS provider's self-tests and writes
fipsmodule.cnf (the module's integrity MAC and self-test state) for *this*
machine; openssl.cnf then activates the FIPS and base providers only and makes
`fips=yes` the default property query, so nothing non-approved can be fetched.
"""
from __future__ import annotations

from pathlib import Path

from support.targets import Target


def _openssl_cnf(extra_provider: str = "", extra_sections: str = "", default_properties: str = "fips=yes") -> str:
    """openssl.cnf around the fipsinstall output ({fipsmodule}): FIPS and base providers, plus extras."""
    return f"""\
config_diagnostics = 1
openssl_conf = openssl_init

.include {{fipsmodule}}

[openssl_init]
providers = provider_sect
alg_section = algorithm_sect

[provider_sect]
fips = fips_sect
base = base_sect
{extra_provider}
[base_sect]
activate = 1
{extra_sections}

[algorithm_sect]
default_properties = {default_properties}
"""


OPENSSL_CNF = _openssl_cnf()


def fipsinstall(target: Target, workdir: Path) -> dict[str, str]:
    """Run fipsinstall for target in workdir; return the environment that selects FIPS mode."""
    root = target.openssl_root
    modules = root / "lib" / "ossl-modules"
    fipsmodule = workdir / "fipsmodule.cnf"
    r = target.run(root / "bin" / "openssl", "fipsinstall", "-module", modules / "fips.so", "-out", fipsmodule,
                   check=False)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0 and "INSTALL PASSED" in out, f"fipsinstall failed for {target.arch}:\n{out}"
    cnf = workdir / "openssl.cnf"
    cnf.write_text(OPENSSL_CNF.format(fipsmodule=fipsmodule))
    return target.env(OPENSSL_CONF=str(cnf), OPENSSL_MODULES=str(modules))


class FipsEnvironments:
    """The FIPS environment of each architecture, made by one fipsinstall per architecture and session
    (the `fips_envs` fixture of tests/conftest.py): the self-tests take seconds natively and far longer
    under qemu-user, and every suite needs the same result. Callers get a copy of the environment;
    the directory (fipsmodule.cnf, openssl.cnf) is shared and must stay as fipsinstall left it."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self._made: dict[str, dict[str, str]] = {}

    def env(self, target: Target | str) -> dict[str, str]:
        """OPENSSL_CONF (FIPS only, fips=yes), OPENSSL_MODULES and the rest of target.env()."""
        target = target if isinstance(target, Target) else Target(target)
        if target.arch not in self._made:
            d = self.workdir / target.arch
            d.mkdir(parents=True, exist_ok=True)
            self._made[target.arch] = fipsinstall(target, d)
        return dict(self._made[target.arch])

    def dir(self, target: Target | str) -> Path:
        """The directory with target's fipsmodule.cnf and openssl.cnf."""
        return Path(self.env(target)["OPENSSL_CONF"]).parent


# The FIPS configuration plus the wvds provider (docs/provider.md), for programs that sign with keys
# held in crypto_service; `?provider!=wvds` keeps every ordinary fetch away from wvds.
WVDS_OPENSSL_CNF = _openssl_cnf("wvds = wvds_sect\n", "\n[wvds_sect]\nmodule = {module}\nactivate = 1\n",
                                "fips=yes,?provider!=wvds")
