"""Small services the runtime gives applications: inbound ports, credentials, log streams.

* ``PortForwarder``: a routing rule maps a device port (8000-9000) to a code node's
  container port; code nodes share the host network here, so the device port is a
  TCP relay to the container port on loopback.
* ``CredentialsEndpoint``: what boto3 inside the app asks for credentials
  (AWS_CONTAINER_CREDENTIALS_FULL_URI). With no application role it answers with an
  error, so botocore raises CredentialRetrievalError exactly as on an appliance
  deployed without a role (the developer guide's sample handles that error).
* ``LogShipper``: files the app writes to /opt/aws/panorama/logs are appended to the
  node's log stream file (``<node>.log``), as the appliance shipped them.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class PortForwarder:
    def __init__(self, host_port: int, target_port: int, bind: str = "0.0.0.0") -> None:
        self.target = ("127.0.0.1", target_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((bind, host_port))
        self.sock.listen(16)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            conn.close()
            return
        upstream.settimeout(None)

        def pump(a: socket.socket, b: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := a.recv(65536):
                    b.sendall(data)
            with contextlib.suppress(OSError):
                b.shutdown(socket.SHUT_WR)

        t = threading.Thread(target=pump, args=(upstream, conn), daemon=True)
        t.start()
        pump(conn, upstream)
        t.join(30)
        conn.close()
        upstream.close()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class CredentialsEndpoint:
    """Container credentials for the application role (none: an error, like the device)."""

    def __init__(self, credentials: dict | Callable[[], dict | None] | None = None) -> None:
        # A callable (the agent's RoleCredentialsProvider) is asked on every request,
        # so the app gets renewed credentials before the old ones expire.
        current = credentials if callable(credentials) else lambda: credentials

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                try:
                    creds = current()
                    status, body = (
                        (404, b'{"message": "no application role is assigned"}')
                        if creds is None
                        else (200, json.dumps(creds).encode())
                    )
                except Exception as exc:  # e.g. the control plane unreachable: retry later
                    status = 503
                    body = json.dumps({"message": f"credentials unavailable: {exc}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/role"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class LogShipper:
    """Appends what applications write under their logs folder to their stream file."""

    def __init__(self) -> None:
        self.sources: list[tuple[Path, Path]] = []  # (folder the app writes, stream file)
        self._offsets: dict[Path, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def add(self, folder: Path, stream: Path) -> None:
        self.sources.append((folder, stream))

    def ship(self) -> None:
        with self._lock:
            for folder, stream in self.sources:
                if not folder.is_dir():
                    continue
                for path in sorted(folder.rglob("*")):
                    # Rotated backups (app.log.1) repeat what was shipped already.
                    if not path.is_file() or path.suffix[1:].isdigit():
                        continue
                    self._ship_file(path, stream)

    def _ship_file(self, path: Path, stream: Path) -> None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return
        inode, offset = self._offsets.get(path, (st.st_ino, 0))
        if inode != st.st_ino or st.st_size < offset:
            offset = 0  # rotated or truncated: start again
        if st.st_size == offset:
            return
        with path.open("rb") as src, stream.open("ab") as dst:
            src.seek(offset)
            data = src.read(st.st_size - offset)
            dst.write(data)
        self._offsets[path] = (st.st_ino, offset + len(data))
