"""The one field reader (wvds.config_fields) as crypto_service's config, est_service's config and the
keystore settings use it: a JSON null is an absent field (the default, or "required" for a field that
must be given), a wrong value is shown as the JSON the user wrote, and both config files load alike."""
from __future__ import annotations

import pytest

from wvds.crypto_service import config as crypto_config
from wvds.crypto_service.errors import ConfigError as CryptoConfigError
from wvds.est_service import config as est_config
from wvds.est_service.errors import ConfigError as EstConfigError
from wvds.keystore import KeyStoreError
from wvds.keystore.settings import DEFAULT_DIRECTORY, Fields

ACCESS = {"allow_uids": [0]}
EST_SERVER = {"url": "https://ca.example", "bootstrap_ca_fingerprint": "ab" * 32}
EST_CERT = {"name": "device", "subject": {"CN": "gw"}}


def test_crypto_config_null_is_absent_for_optional_fields():
    nulls = {"access": ACCESS, "socket": None, "grants": None, "openssl": {"config": None, "modules": None},
             "limits": {"workers": None, "replay_sync": None, "rate_limit": None}, "log": {"level": None},
             "keystore": {"backend": "file", "directory": None, "secret_file": None}}
    assert crypto_config.parse(nulls) == crypto_config.parse({"access": ACCESS, "keystore": {"backend": "file"}})


@pytest.mark.parametrize("doc,message", [
    ({"access": ACCESS, "grants": [{"owner_uid": None, "label": "k", "usage": ["sign"]}]},
     "grants[0]: owner_uid and label are required"),
    ({"access": ACCESS, "grants": [None]}, "grants[0]: must be an object, got null"),
    ({"access": ACCESS, "keystore": {"backend": None}}, "keystore.backend: required"),
    ({"access": {"allow_uids": None}}, "access: no client is allowed"),
    ({"access": ACCESS, "limits": {"workers": "4"}}, 'limits.workers: must be an integer, got "4"'),
    (None, "(top level): must be an object, got null"),
], ids=["grant-owner", "grant-entry", "keystore-backend", "access", "wrong-type", "top-level"])
def test_crypto_config_null_for_required_fields_names_them(doc, message):
    with pytest.raises(CryptoConfigError) as e:
        crypto_config.parse(doc, "c.json")
    assert any(line.startswith(f"c.json: {message}") for line in str(e.value).splitlines()), str(e.value)


def test_est_config_null_is_absent_for_optional_fields():
    server = {**EST_SERVER, "label": None, "trust_anchor": None, "tls": None, "auth": {"bootstrap": None},
              "timeout_s": None}
    cert = {**EST_CERT, "key_algorithm": None, "san": None, "retry": {"initial_s": None}, "poll": None}
    nulls = est_config.parse({"servers": {"s": server}, "certificates": [cert], "openssl": None, "log": None,
                              "crypto_service": {"socket": None}, "state_dir": None})
    plain = est_config.parse({"servers": {"s": EST_SERVER}, "certificates": [EST_CERT]})
    assert nulls == plain


@pytest.mark.parametrize("server,cert,message", [
    ({**EST_SERVER, "url": None}, EST_CERT, "servers.s.url: required (https://host[:port])"),
    (EST_SERVER, {**EST_CERT, "name": None}, "certificates[0].name: required"),
    ({**EST_SERVER, "tls": []}, EST_CERT, "servers.s.tls: must be an object, got list"),
    ({**EST_SERVER, "timeout_s": True}, EST_CERT, "servers.s.timeout_s: must be a number, got true"),
], ids=["url", "name", "not-an-object", "wrong-type"])
def test_est_config_null_for_required_fields_names_them(server, cert, message):
    with pytest.raises(EstConfigError) as e:
        est_config.parse({"servers": {"s": server}, "certificates": [cert]}, "e.json")
    assert any(line.startswith(f"e.json: {message}") for line in str(e.value).splitlines()), str(e.value)


def test_keystore_settings_null_is_absent_and_required_is_named():
    f = Fields({"backend": "pkcs11", "directory": None, "module": None, "token_label": None, "pin_file": None,
                "pin_env": None, "native": None}, "pkcs11")
    assert f.directory() == DEFAULT_DIRECTORY
    assert f.choices("native", {"ecdsa-p256": 1}) == []
    assert f.path("module", required=True) is None and f.get("token_label", str, required=True) is None
    assert f.secret_source("pin_file", "pin_env", required=True) is None
    with pytest.raises(KeyStoreError) as e:
        f.finish()
    assert str(e.value).splitlines() == ["keystore.module: required for the pkcs11 backend",
                                         "keystore.token_label: required for the pkcs11 backend",
                                         "keystore.pin_file: required for the pkcs11 backend (or pin_env)"]


def test_keystore_settings_show_a_wrong_value_as_json():
    f = Fields({"backend": "tpm", "pcr_bank": False}, "tpm")
    f.get("pcr_bank", str, "sha256")
    with pytest.raises(KeyStoreError, match="keystore.pcr_bank: must be a string, got false"):
        f.finish()


def test_crypto_config_passes_no_null_on_to_the_keystore():
    """The backends read some fields directly (the file backend: which secret is configured)."""
    cfg = crypto_config.parse({"access": ACCESS, "keystore": {"backend": "file", "secret_file": None}})
    assert cfg.keystore == {"backend": "file"}


@pytest.mark.parametrize("module,error", [(crypto_config, CryptoConfigError), (est_config, EstConfigError)],
                         ids=["crypto_service", "est_service"])
def test_both_configs_load_alike(tmp_path, module, error):
    for content, message in ((None, "file not found"), (b"\xff{}", "not UTF-8"),
                             (b'{"a": 1,}', "line 1 column 9: invalid JSON"),
                             (b"null", "(top level): must be an object, got null")):
        path = tmp_path / "config.json"
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(error) as e:
            module.load(str(path))
        assert f"{path}: {message}" in str(e.value), str(e.value)
