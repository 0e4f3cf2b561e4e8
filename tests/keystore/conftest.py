"""Key-store tests run the REAL service with each persistent backend: the file backend with a device secret,
the TPM backend against swtpm, the PKCS#11 backend against SoftHSMv2 - all started here, none mocked."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.fips import fipsinstall
from support.service import ServiceProcess, base_config, clib_path
from support.softhsm import SoftHsm
from support.targets import HOST
from support.tpm import Swtpm

BACKENDS = ("file", "tpm", "pkcs11")
TOKEN_LABEL = "wvds-test"
PIN = "4711-test-pin"


@pytest.fixture(scope="session")
def fips_env(tmp_path_factory):
    if not clib_path(HOST).exists():
        pytest.fail(f"{clib_path(HOST)} missing: run 'scons' (./run test does)")
    return fipsinstall(HOST, tmp_path_factory.mktemp("fips-keystore"))


@pytest.fixture(scope="session")
def swtpm(tmp_path_factory):
    with Swtpm(tmp_path_factory.mktemp("swtpm")) as tpm:
        yield tpm


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory):
    hsm = SoftHsm(tmp_path_factory.mktemp("softhsm"))
    hsm.init_token(TOKEN_LABEL, PIN)
    return hsm


class RestartableService(ServiceProcess):
    """ServiceProcess whose start() can be repeated: each start gets a fresh log (the old one is kept aside),
    so "ready" means this run is ready, and `log()` shows this run only."""

    runs = 0

    def start(self, timeout: float = 30) -> "RestartableService":
        if self.log_path.exists():
            self.runs += 1
            self.log_path.rename(self.log_path.with_name(f"service.{self.runs}.log"))
        return super().start(timeout)


@dataclass
class Backend:
    """One backend's keystore settings and the environment the service needs for it."""
    name: str
    workdir: Path
    settings: dict
    env: dict = field(default_factory=dict)
    fips_env: dict = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return Path(self.settings["directory"])

    def service(self, extra_env: dict | None = None, **keystore_overrides) -> RestartableService:
        """A (not yet started) service on this backend; start()/stop() it as often as needed."""
        settings = {k: v for k, v in {**self.settings, **keystore_overrides}.items() if v is not None}
        cfg = base_config(self.workdir, keystore=settings)
        return RestartableService(HOST, self.fips_env, self.workdir, cfg, extra_env={**self.env, **(extra_env or {})})

    def key_files(self) -> list[Path]:
        return sorted((self.directory / "keys").glob("*.key"))


def make_backend(name: str, request, workdir: Path, fips: dict, **extra) -> Backend:
    directory = str(workdir / "keystore")
    if name == "file":
        secret = workdir / "device.secret"
        secret.write_bytes(os.urandom(32))
        secret.chmod(0o600)
        return Backend(name, workdir, {"backend": "file", "directory": directory, "secret_file": str(secret),
                                       **extra}, fips_env=fips)
    if name == "tpm":
        tpm = request.getfixturevalue("swtpm")
        return Backend(name, workdir, {"backend": "tpm", "directory": directory, "tcti": tpm.tcti, **extra},
                       fips_env=fips)
    if name == "pkcs11":
        hsm = request.getfixturevalue("softhsm")
        return Backend(name, workdir, {"backend": "pkcs11", "directory": directory, "module": hsm.module,
                                       "token_label": TOKEN_LABEL, "pin_env": "WVDS_TEST_TOKEN_PIN",
                                       "kek_label": f"kek-{workdir.name}", **extra},
                       env={**hsm.env, "WVDS_TEST_TOKEN_PIN": PIN}, fips_env=fips)
    raise ValueError(name)


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path, fips_env) -> Backend:
    return make_backend(request.param, request, tmp_path, fips_env)


def copy_fixture_store(name: str, tmp_path: Path) -> tuple[Path, Path, dict]:
    """tests/keystore/data/<name> copied for a service (modes as the service demands): store, secret, manifest."""
    data = Path(__file__).parent / "data"
    store = tmp_path / name
    shutil.copytree(data / name, store)
    for p in [store, *store.rglob("*")]:
        p.chmod(0o700 if p.is_dir() else 0o600)
    secret = tmp_path / f"{name}.secret"
    secret.write_bytes((data / f"{name}.secret").read_bytes())
    secret.chmod(0o600)
    return store, secret, json.loads((data / f"{name}.json").read_text())


def status_keystore(client) -> dict:
    return client.status()["keystore"]


def write_json(path: Path, doc) -> None:
    path.write_text(json.dumps(doc))
