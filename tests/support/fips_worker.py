"""The FIPS worker: ``python -m support.fips_worker`` (see fips_process.py for why it exists).

Protocol on stdin/stdout: length-prefixed pickles. Requests are
``(module, function name, args, kwargs)``; every answer is ``(status, payload)``
with status "ready" (after load()), "ok" (payload: return value) or "failed"
(payload: formatted traceback). The test code's own prints go to stderr: file
descriptor 1 is redirected there so nothing can corrupt the protocol stream.
"""
from __future__ import annotations

import faulthandler
import importlib
import os
import pickle
import struct
import sys
import traceback

_LEN = struct.Struct("<I")


def main() -> int:
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    proto_in = sys.stdin.buffer
    faulthandler.enable()  # a crash in C prints the Python stack to stderr, which the test failure shows

    def send(status: str, payload) -> None:
        try:
            data = pickle.dumps((status, payload))
        except Exception:  # an unpicklable return value or exception
            data = pickle.dumps(("failed", f"unpicklable result: {payload!r}"))
        proto_out.write(_LEN.pack(len(data)) + data)
        proto_out.flush()

    try:
        import wvds.ossl
        info = wvds.ossl.load(os.environ["WVDS_TEST_OPENSSL_CONF"], os.environ["WVDS_TEST_OPENSSL_MODULES"])
    except BaseException:
        send("failed", traceback.format_exc())
        return 1
    send("ready", info)

    while True:
        head = proto_in.read(_LEN.size)
        if len(head) < _LEN.size:
            return 0
        module, name, args, kwargs = pickle.loads(proto_in.read(_LEN.unpack(head)[0]))
        try:
            fn = importlib.import_module(module)
            for part in name.split("."):
                fn = getattr(fn, part)
            result = fn.__wrapped__(*args, **kwargs)
        except BaseException:
            send("failed", traceback.format_exc())
        else:
            send("ok", result)


if __name__ == "__main__":
    sys.exit(main())
