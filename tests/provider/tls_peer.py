"""A TLS 1.3 peer on Python's ssl module, run as its own process on our OpenSSL 3.6.

  server  CERT KEY CA PORTFILE   serves until killed; requires and verifies a client certificate,
                                 answers each request with one JSON line describing the connection
  client  HOST PORT CA CERT KEY  what est_service does: load_cert_chain(CERT, KEY) -- KEY may be a
          [--twice]              WVDS KEY REFERENCE when the wvds provider is in OPENSSL_CONF --
                                 connects, sends an HTTP request, prints what the server sends
                                 (--twice: connects again after a line on stdin, so that a test can
          [--load CNF MODULES]   change the world in between; --load: configure OpenSSL the way
                                 est_service does, wvds.ossl.load(CNF, MODULES))

A failure prints "ERROR <ssl error>" on stdout and exits 1: the tests look for clean failures.
"""
from __future__ import annotations

import json
import os
import socket
import ssl
import sys


def server(cert: str, key: str, ca: str, portfile: str) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    with socket.create_server(("127.0.0.1", 0)) as listener:
        with open(portfile + ".tmp", "w") as f:
            f.write(str(listener.getsockname()[1]))
        os.replace(portfile + ".tmp", portfile)
        while True:
            conn, _ = listener.accept()
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(4096)  # the client's request: read before answering and closing
                    peer = tls.getpeercert()
                    subject = dict(x[0] for x in peer["subject"])
                    info = {"version": tls.version(), "client_cn": subject.get("commonName"),
                            "openssl": ssl.OPENSSL_VERSION}
                    tls.sendall((json.dumps(info) + "\n").encode())
                    print(json.dumps(info), flush=True)
                    tls.unwrap()  # close_notify: a clean end for the client
            except (ssl.SSLError, OSError) as e:
                print(json.dumps({"error": str(e)}), flush=True)


def client(host: str, port: str, ca: str, cert: str, key: str, twice: bool, load: list[str] | None) -> int:
    try:
        if load:  # est_service's way: wvds.ossl.load(openssl.config, openssl.modules), no $OPENSSL_CONF
            from wvds import ossl
            ossl.load(*load)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(ca)
        ctx.load_cert_chain(cert, key)
        for round_ in range(2 if twice else 1):
            if round_:
                sys.stdin.readline()  # the test changes the world here
            with socket.create_connection((host, int(port)), timeout=60) as raw:
                with ctx.wrap_socket(raw, server_hostname=host) as tls:
                    tls.sendall(b"GET / HTTP/1.0\r\n\r\n")  # s_server -www answers a request
                    print(tls.makefile("rb").read().decode(errors="replace"), flush=True)
    except (ssl.SSLError, OSError) as e:
        print(f"ERROR {e}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(*sys.argv[2:6])
    else:
        load = sys.argv[sys.argv.index("--load") + 1:][:2] if "--load" in sys.argv else None
        sys.exit(client(*sys.argv[2:7], twice="--twice" in sys.argv, load=load))
