"""Loopback listeners an attacker would point likely at: they record every connection and request.

`Listener` is a tiny threaded HTTP server on 127.0.0.1. `/redirect` answers 302 to
`/latest/meta-data/iam/security-credentials/role` (a cloud metadata path), which answers with
credentials, as an internal metadata service would; anything else answers 200. `connections`
counts every TCP connection accepted, so an HTTPS or SMTP client that reached it is counted
even though it speaks neither TLS nor SMTP.
"""
from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

METADATA_PATH = "/latest/meta-data/iam/security-credentials/role"
METADATA_BODY = 'AccessKeyId=ASIAINTERNALKEY0001 SecretAccessKey="internal/secret+key" Token=internal-token'


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append((self.command, self.path, dict(self.headers), body))
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}{METADATA_PATH}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        payload = (METADATA_BODY if self.path == METADATA_PATH else "ok").encode()
        self.send_response(500 if self.path == METADATA_PATH else 200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_PUT = _answer

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


class Listener(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str, dict, bytes]] = []
        self.connections = 0
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def verify_request(self, request: socket.socket, client_address) -> bool:
        self.connections += 1
        return True

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, path: str = "/", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def __enter__(self) -> "Listener":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
