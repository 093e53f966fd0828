"""A local RFC 3161 timestamp authority: ``openssl ts -reply`` behind an HTTP server on
loopback, with a CA and a TSA certificate (extendedKeyUsage timeStamping, critical) made for
the test by ``openssl req``/``x509``. ``verify_with_openssl`` checks a token as a third party
would (``openssl ts -verify``)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_CONFIG = """
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5.6
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


class LocalTSA:
    def __init__(self, name: str = "pileon test TSA") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pileon-tsa-"))
        d = self.dir
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
                 "-out", "ca.pem", "-subj", f"/CN={name} root", "-days", "30",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out",
                 "tsa.csr", "-subj", f"/CN={name}", cwd=d)
        (d / "ext.cnf").write_text("extendedKeyUsage=critical,timeStamping\n"
                                   "keyUsage=critical,digitalSignature\n"
                                   "basicConstraints=CA:FALSE\n")
        _openssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", "tsa.pem", "-days", "30", "-extfile", "ext.cnf",
                 cwd=d)
        (d / "serial").write_text("01\n")
        (d / "tsa.cnf").write_text(_CONFIG.format(dir=d))
        self.ca = d / "ca.pem"
        self.requests = 0
        self.down = False
        self._lock = threading.Lock()
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if tsa.down or self.headers.get("Content-Type") != \
                        "application/timestamp-query":
                    self.send_response(503 if tsa.down else 415)
                    self.end_headers()
                    return
                reply = tsa.reply(query)
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def reply(self, query: bytes) -> bytes:
        with self._lock:  # openssl ts keeps its serial in a file
            self.requests += 1
            q, r = self.dir / "q.tsq", self.dir / "r.tsr"
            q.write_bytes(query)
            _openssl("ts", "-reply", "-config", "tsa.cnf", "-queryfile", str(q), "-out",
                     str(r), cwd=self.dir)
            return r.read_bytes()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/tsr"

    def __enter__(self) -> LocalTSA:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)  # its keys and queries end with the test

    def verify_with_openssl(self, data: bytes, token: bytes) -> subprocess.CompletedProcess[str]:
        """``openssl ts -verify -data`` over the timestamped bytes and the token (TSR)."""
        work = Path(tempfile.mkdtemp(dir=self.dir))
        (work / "data").write_bytes(data)
        (work / "r.tsr").write_bytes(token)
        return subprocess.run(
            ["openssl", "ts", "-verify", "-data", "data", "-in", "r.tsr", "-CAfile",
             str(self.ca), "-untrusted", str(self.dir / "tsa.pem")],
            cwd=work, capture_output=True, text=True, timeout=60, check=False)
