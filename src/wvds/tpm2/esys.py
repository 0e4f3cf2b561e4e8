"""tpm2-tss's ESAPI through ctypes: the TPM commands the key store and the TPM engine use.

The device's tpm2-tss libraries do the TPM work (libtss2-esys: sessions, parameter
encryption, HMACs; libtss2-tctildr: the transport; libtss2-mu: marshalling;
libtss2-rc: error texts). This module only passes bytes: every structure is built
or read in its wire form by `wvds.tpm2.wire`, turned into tpm2-tss's C structure
by libtss2-mu's Unmarshal into a zeroed buffer larger than any of them (STRUCT_ROOM;
a test compares it with sizeof in the headers), and every structure ESAPI returns
is marshalled back and freed at once. No pointer into a C structure is kept.

tpm2-tss does its session cryptography with the libcrypto already in the process
(libtss2-esys links libcrypto.so.3 by soname: the service's own, loaded first).
Nothing else is bound, so the process holds no crypto library but ours.
"""
from __future__ import annotations

import ctypes
import os
from ctypes import POINTER, byref, c_char_p, c_size_t, c_uint16, c_uint32, c_void_p

from wvds.tpm2 import wire

os.environ.setdefault("TSS2_LOG", "all+NONE")  # tpm2-tss would print its own warnings on stderr: we report instead

LIBRARIES = {"esys": "libtss2-esys.so.0", "tctildr": "libtss2-tctildr.so.0", "mu": "libtss2-mu.so.0",
             "rc": "libtss2-rc.so.0"}
STRUCT_ROOM = 4096  # bytes: more than sizeof of every structure passed (TPM2B_PRIVATE, the largest, is 1552)

R, TR, P = c_uint32, c_uint32, c_void_p  # TSS2_RC, ESYS_TR, any pointer
PTR, PP = POINTER(c_uint32), POINTER(c_void_p)
_SH = (TR, TR, TR)  # the three session handles of every command

# name: (library, argtypes); every function returns a TSS2_RC
PROTOTYPES = {
    "Tss2_TctiLdr_Initialize_Ex": ("tctildr", (c_char_p, c_char_p, PP)),
    "Tss2_TctiLdr_Finalize": ("tctildr", (PP,)),
    "Esys_Initialize": ("esys", (PP, P, P)),
    "Esys_Finalize": ("esys", (PP,)),
    "Esys_Free": ("esys", (P,)),
    "Esys_TR_SetAuth": ("esys", (P, TR, P)),
    "Esys_TR_GetName": ("esys", (P, TR, PP)),
    "Esys_TRSess_SetAttributes": ("esys", (P, TR, ctypes.c_uint8, ctypes.c_uint8)),
    "Esys_FlushContext": ("esys", (P, TR)),
    "Esys_CreatePrimary": ("esys", (P, TR, *_SH, P, P, P, P, PTR, PP, PP, PP, PP)),
    "Esys_Create": ("esys", (P, TR, *_SH, P, P, P, P, PP, PP, PP, PP, PP)),
    "Esys_Load": ("esys", (P, TR, *_SH, P, P, PTR)),
    "Esys_Unseal": ("esys", (P, TR, *_SH, PP)),
    "Esys_StartAuthSession": ("esys", (P, TR, TR, *_SH, P, ctypes.c_uint8, P, c_uint16, PTR)),
    "Esys_PolicyPCR": ("esys", (P, TR, *_SH, P, P)),
    "Esys_PolicyAuthValue": ("esys", (P, TR, *_SH)),
    "Esys_PolicyGetDigest": ("esys", (P, TR, *_SH, PP)),
    "Esys_Sign": ("esys", (P, TR, *_SH, P, P, P, PP)),
}
UNMARSHALLED = ("TPM2B_PUBLIC", "TPM2B_PRIVATE", "TPM2B_SENSITIVE_CREATE", "TPM2B_DATA", "TPML_PCR_SELECTION",
                "TPMT_SYM_DEF", "TPM2B_DIGEST", "TPM2B_AUTH", "TPMT_SIG_SCHEME",
                "TPMT_TK_HASHCHECK")
MARSHALLED = ("TPM2B_PUBLIC", "TPM2B_PRIVATE", "TPM2B_NAME", "TPM2B_DIGEST", "TPM2B_SENSITIVE_DATA",
              "TPMT_SIGNATURE")


class TpmError(Exception):
    """A TPM or TSS error: `rc` as returned, `error` the TPM error without its parameter/handle/session bits."""

    def __init__(self, rc: int, where: str):
        self.rc = rc
        self.error = (wire.RC_FMT1 | rc & 0x3F) if rc & wire.RC_FMT1 and rc >> 16 == 0 else rc
        super().__init__(f"{where}: {_decode(rc)}")


class _Lib:
    """The tpm2-tss functions, resolved once (a library or a function missing fails at first use: ImportError)."""

    def __init__(self):
        libs = {}
        for key, soname in LIBRARIES.items():
            try:
                libs[key] = ctypes.CDLL(soname)
            except OSError as e:
                raise ImportError(f"tpm2-tss library {soname} not found ({e}); install the device's tpm2-tss "
                                  "(Debian: libtss2-esys-3.0.2-0, libtss2-tctildr0)") from None
        try:
            for name, (lib, argtypes) in PROTOTYPES.items():
                fn = getattr(libs[lib], name)
                fn.restype, fn.argtypes = R, argtypes
                setattr(self, name, fn)
            for kind, names in (("Unmarshal", UNMARSHALLED), ("Marshal", MARSHALLED)):
                for t in names:
                    fn = getattr(libs["mu"], f"Tss2_MU_{t}_{kind}")
                    fn.restype = R
                    fn.argtypes = (c_char_p, c_size_t, POINTER(c_size_t), P) if kind == "Unmarshal" else \
                        (P, c_void_p, c_size_t, POINTER(c_size_t))
                    setattr(self, f"{kind}_{t}", fn)
            self.Tss2_RC_Decode = libs["rc"].Tss2_RC_Decode
        except AttributeError as e:  # a tpm2-tss older than 3.0
            raise ImportError(f"the installed tpm2-tss lacks a function this service needs ({e}); "
                              "tpm2-tss 3.0 or newer is required") from None
        self.Tss2_RC_Decode.restype, self.Tss2_RC_Decode.argtypes = c_char_p, (R,)


_lib: _Lib | None = None


def lib() -> _Lib:
    """Load tpm2-tss (ImportError if the device does not have it)."""
    global _lib
    if _lib is None:
        _lib = _Lib()
    return _lib


def _decode(rc: int) -> str:
    text = lib().Tss2_RC_Decode(rc)
    return f"{text.decode(errors='replace') if text else 'TSS error'} (rc 0x{rc:x})"


def _check(rc: int, where: str) -> None:
    if rc:
        raise TpmError(rc, where)


class _In:
    """A wire structure unmarshalled into a zeroed C buffer for one call; cleared again afterwards."""

    def __init__(self, type_name: str, data: bytes):
        self.buf = ctypes.create_string_buffer(STRUCT_ROOM)
        offset = c_size_t(0)
        rc = getattr(lib(), f"Unmarshal_{type_name}")(data, len(data), byref(offset), self.buf)
        if rc or offset.value != len(data):
            self.clear()
            raise wire.WireError(f"malformed {type_name}")

    def clear(self) -> None:
        ctypes.memset(self.buf, 0, STRUCT_ROOM)


def _take(type_name: str, ptr: c_void_p, secret: bool = False) -> bytes | bytearray:
    """Marshal a structure ESAPI allocated and free it. With secret: both C copies are zeroed and the
    result is a bytearray the caller can zero in turn."""
    if not ptr:
        raise wire.WireError(f"ESAPI returned no {type_name}")
    buf = ctypes.create_string_buffer(STRUCT_ROOM)
    offset = c_size_t(0)
    try:
        _check(getattr(lib(), f"Marshal_{type_name}")(ptr, buf, STRUCT_ROOM, byref(offset)), f"marshal {type_name}")
        if not secret:
            return buf.raw[:offset.value]
        out = bytearray(offset.value)
        ctypes.memmove((ctypes.c_char * offset.value).from_buffer(out), buf, offset.value)
        ctypes.memset(ptr, 0, offset.value)  # TPM2B_SENSITIVE_DATA: size + bytes, as long as its wire form
        return out
    finally:
        if secret:
            ctypes.memset(buf, 0, STRUCT_ROOM)
        lib().Esys_Free(ptr)


class Esys:
    """One ESAPI context over one TCTI ("NAME[:CONF]"). Not thread-safe: the key store locks around it."""

    def __init__(self, tcti: str):
        name, _, conf = tcti.partition(":")
        self._tcti, self._ctx = c_void_p(), c_void_p()
        _check(lib().Tss2_TctiLdr_Initialize_Ex(name.encode(), conf.encode() if conf else None, byref(self._tcti)),
               f"TCTI {tcti!r}")
        rc = lib().Esys_Initialize(byref(self._ctx), self._tcti, None)
        if rc:
            lib().Tss2_TctiLdr_Finalize(byref(self._tcti))
            raise TpmError(rc, "ESAPI initialization")

    def close(self) -> None:
        if self._ctx:
            lib().Esys_Finalize(byref(self._ctx))
        if self._tcti:
            lib().Tss2_TctiLdr_Finalize(byref(self._tcti))

    # -- handles and sessions ----------------------------------------------------
    def set_auth(self, handle: int, auth: bytes) -> None:
        a = _In("TPM2B_AUTH", wire.tpm2b(auth))
        try:
            _check(lib().Esys_TR_SetAuth(self._ctx, handle, a.buf), "TR_SetAuth")
        finally:
            a.clear()

    def name(self, handle: int) -> bytes:
        out = c_void_p()
        _check(lib().Esys_TR_GetName(self._ctx, handle, byref(out)), "TR_GetName")
        return wire.tpm2b_content(_take("TPM2B_NAME", out))

    def flush(self, handle: int) -> None:
        _check(lib().Esys_FlushContext(self._ctx, handle), "FlushContext")

    def start_auth_session(self, tpm_key: int, session_type: int, symmetric: str) -> int:
        """A session salted with tpm_key (or unsalted: TR_NONE), unbound, SHA-256, nonce from tpm2-tss."""
        sym, handle = _In("TPMT_SYM_DEF", wire.sym_def(symmetric)), c_uint32()
        _check(lib().Esys_StartAuthSession(self._ctx, tpm_key, wire.TR_NONE, wire.TR_NONE, wire.TR_NONE,
                                           wire.TR_NONE, None, session_type, sym.buf, wire.ALG["SHA256"],
                                           byref(handle)), "StartAuthSession")
        return handle.value

    def set_session_attributes(self, session: int, attributes: int) -> None:
        _check(lib().Esys_TRSess_SetAttributes(self._ctx, session, attributes, 0xFF), "TRSess_SetAttributes")

    def policy_pcr(self, session: int, selection: bytes) -> None:
        digest, pcrs = _In("TPM2B_DIGEST", wire.tpm2b(b"")), _In("TPML_PCR_SELECTION", selection)
        _check(lib().Esys_PolicyPCR(self._ctx, session, wire.TR_NONE, wire.TR_NONE, wire.TR_NONE, digest.buf,
                                    pcrs.buf), "PolicyPCR")

    def policy_auth_value(self, session: int) -> None:
        _check(lib().Esys_PolicyAuthValue(self._ctx, session, wire.TR_NONE, wire.TR_NONE, wire.TR_NONE),
               "PolicyAuthValue")

    def policy_digest(self, session: int) -> bytes:
        out = c_void_p()
        _check(lib().Esys_PolicyGetDigest(self._ctx, session, wire.TR_NONE, wire.TR_NONE, wire.TR_NONE,
                                          byref(out)), "PolicyGetDigest")
        return wire.tpm2b_content(_take("TPM2B_DIGEST", out))

    # -- objects -----------------------------------------------------------------
    def create_primary(self, template: bytes, hierarchy: int = wire.TR_RH_OWNER) -> int:
        sens, pub = _In("TPM2B_SENSITIVE_CREATE", wire.sensitive_create()), _In("TPM2B_PUBLIC", template)
        info, pcrs = _In("TPM2B_DATA", wire.tpm2b(b"")), _In("TPML_PCR_SELECTION", wire.empty_pcr_selection())
        handle = c_uint32()
        _check(lib().Esys_CreatePrimary(self._ctx, hierarchy, wire.TR_PASSWORD, wire.TR_NONE, wire.TR_NONE,
                                        sens.buf, pub.buf, info.buf, pcrs.buf, byref(handle), None, None, None, None),
               "CreatePrimary")
        return handle.value

    def create(self, parent: int, sensitive: bytes, template: bytes, session: int = wire.TR_PASSWORD
               ) -> tuple[bytes, bytes]:
        """(TPM2B_PRIVATE, TPM2B_PUBLIC) of a new object under parent, both marshalled."""
        sens, pub = _In("TPM2B_SENSITIVE_CREATE", sensitive), _In("TPM2B_PUBLIC", template)
        info, pcrs = _In("TPM2B_DATA", wire.tpm2b(b"")), _In("TPML_PCR_SELECTION", wire.empty_pcr_selection())
        private, public = c_void_p(), c_void_p()
        try:
            _check(lib().Esys_Create(self._ctx, parent, session, wire.TR_NONE, wire.TR_NONE, sens.buf, pub.buf,
                                     info.buf, pcrs.buf, byref(private), byref(public), None, None, None), "Create")
        finally:
            sens.clear()
        try:
            made = _take("TPM2B_PRIVATE", private)
        except BaseException:
            lib().Esys_Free(public)
            raise
        return made, _take("TPM2B_PUBLIC", public)

    def load(self, parent: int, private: bytes, public: bytes) -> int:
        priv, pub, handle = _In("TPM2B_PRIVATE", private), _In("TPM2B_PUBLIC", public), c_uint32()
        _check(lib().Esys_Load(self._ctx, parent, wire.TR_PASSWORD, wire.TR_NONE, wire.TR_NONE, priv.buf, pub.buf,
                               byref(handle)), "Load")
        return handle.value

    def unseal(self, item: int, session: int) -> bytearray:
        out = c_void_p()
        _check(lib().Esys_Unseal(self._ctx, item, session, wire.TR_NONE, wire.TR_NONE, byref(out)), "Unseal")
        marshalled = _take("TPM2B_SENSITIVE_DATA", out, secret=True)
        secret = marshalled[2:]
        marshalled[:] = bytes(len(marshalled))
        return secret

    # -- signing ------------------------------------------------------------------
    def sign(self, key: int, digest: bytes, scheme: bytes, validation: bytes) -> bytes:
        """The marshalled TPMT_SIGNATURE."""
        d, s, v = _In("TPM2B_DIGEST", wire.tpm2b(digest)), _In("TPMT_SIG_SCHEME", scheme), \
            _In("TPMT_TK_HASHCHECK", validation)
        out = c_void_p()
        _check(lib().Esys_Sign(self._ctx, key, wire.TR_PASSWORD, wire.TR_NONE, wire.TR_NONE, d.buf, s.buf, v.buf,
                               byref(out)), "Sign")
        return _take("TPMT_SIGNATURE", out)
