"""The service on each persistent key-store backend: the file backend with a device secret, the TPM
backend against swtpm, the PKCS#11 backend against SoftHSMv2 (tests/keystore, tests/faults).

The swtpm and SoftHSM instances are session fixtures of tests/keystore/conftest.py; make_backend
asks for them through `request` only when the backend needs them.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from support.binaries import SOURCE, Programs
from support.service import RestartableService, base_config
from support.softhsm import PIN, TOKEN_LABEL
from support.targets import HOST, ROOT

BACKENDS = ("file", "tpm", "pkcs11")
FIXTURE_STORES = ROOT / "tests" / "keystore" / "data"  # key stores written by earlier releases


@dataclass
class Backend:
    """One backend's keystore settings and the environment the service needs for it."""
    name: str
    workdir: Path
    settings: dict
    env: dict = field(default_factory=dict)
    fips_env: dict = field(default_factory=dict)
    programs: Programs = SOURCE  # the sources, or the binaries under test

    @property
    def directory(self) -> Path:
        return Path(self.settings["directory"])

    def service(self, extra_env: dict | None = None, **keystore_overrides) -> RestartableService:
        """A (not yet started) service on this backend; start()/stop() it as often as needed."""
        settings = {k: v for k, v in {**self.settings, **keystore_overrides}.items() if v is not None}
        cfg = base_config(self.workdir, keystore=settings)
        return RestartableService(HOST, self.fips_env, self.workdir, cfg, extra_env={**self.env, **(extra_env or {})},
                                  programs=self.programs)

    def key_files(self) -> list[Path]:
        return sorted((self.directory / "keys").glob("*.key"))


def make_backend(name: str, request, workdir: Path, fips: dict, programs: Programs = SOURCE, **extra) -> Backend:
    """Backend `name` in workdir; extra goes into its keystore settings (e.g. native=[...])."""
    directory = str(workdir / "keystore")
    if name == "file":
        secret = workdir / "device.secret"
        secret.write_bytes(os.urandom(32))
        secret.chmod(0o600)
        return Backend(name, workdir, {"backend": "file", "directory": directory, "secret_file": str(secret),
                                       **extra}, fips_env=fips, programs=programs)
    if name == "tpm":
        tpm = request.getfixturevalue("swtpm")
        return Backend(name, workdir, {"backend": "tpm", "directory": directory, "tcti": tpm.tcti, **extra},
                       fips_env=fips, programs=programs)
    if name == "pkcs11":
        hsm = request.getfixturevalue("softhsm")
        return Backend(name, workdir, {"backend": "pkcs11", "directory": directory, "module": hsm.module,
                                       "token_label": TOKEN_LABEL, "pin_env": "WVDS_TEST_TOKEN_PIN",
                                       "kek_label": f"kek-{workdir.name}", **extra},
                       env={**hsm.env, "WVDS_TEST_TOKEN_PIN": PIN}, fips_env=fips, programs=programs)
    raise ValueError(name)


def copy_fixture_store(name: str, tmp_path: Path) -> tuple[Path, Path, dict]:
    """tests/keystore/data/<name> copied for a service (modes as the service demands): store, secret, manifest."""
    store = tmp_path / name
    shutil.copytree(FIXTURE_STORES / name, store)
    for p in [store, *store.rglob("*")]:
        p.chmod(0o700 if p.is_dir() else 0o600)
    secret = tmp_path / f"{name}.secret"
    secret.write_bytes((FIXTURE_STORES / f"{name}.secret").read_bytes())
    secret.chmod(0o600)
    return store, secret, json.loads((FIXTURE_STORES / f"{name}.json").read_text())
