"""A local Gamma + CLOB REST server replaying a recorded snapshot directory.

The offline example and the tests point the *real* venue clients at it::

    python -m argus_venue_polymarket.replay_server --dir examples/polymarket/snapshot --port 0

prints ``gamma_url=http://127.0.0.1:PORT clob_url=http://127.0.0.1:PORT`` and
serves until interrupted.  A snapshot directory holds:

* ``events.json`` -- a list of Gamma ``/events`` items (served with the real
  ``limit``/``offset``/``active``/``closed`` semantics);
* ``books.json`` -- a list of CLOB book summaries (``GET /book?token_id=`` and
  ``POST /books``).

It binds 127.0.0.1 only.  Written on the standard library because it is a
fixture server, not product code with throughput needs.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

Handler = Callable[[str, str, dict[str, list[str]], Any], tuple[int, Any] | None]


class SnapshotServer:
    """Serves a snapshot's events and books over HTTP on 127.0.0.1.

    ``extra`` handlers run first and may answer any request (tests use them to
    inject errors, record order posts, or serve CLOB order endpoints).
    """

    def __init__(self, events: list[dict[str, Any]], books: list[dict[str, Any]],
                 port: int = 0, extra: Handler | None = None) -> None:
        self.events = events
        self.books = {str(b["asset_id"]): b for b in books if isinstance(b, dict)
                      and "asset_id" in b}
        self.extra = extra
        self.requests: list[tuple[str, str, Any]] = []
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body_raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(body_raw) if body_raw else None
                except ValueError:
                    body = body_raw.decode("utf-8", "replace")
                query = parse_qs(parts.query)
                server.requests.append((method, parts.path, body if body is not None else query))
                status, payload = server.handle(method, parts.path, query, body,
                                                dict(self.headers))
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._thread: threading.Thread | None = None
        self.headers_seen: list[dict[str, str]] = []

    @classmethod
    def from_dir(cls, path: str | Path, port: int = 0, extra: Handler | None = None
                 ) -> SnapshotServer:
        """Load ``events.json`` and ``books.json`` from ``path``."""
        root = Path(path)
        events = json.loads((root / "events.json").read_text())
        books = json.loads((root / "books.json").read_text())
        return cls(events, books, port, extra)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any,
               headers: dict[str, str]) -> tuple[int, Any]:
        """Route one request (``extra`` first, then the snapshot endpoints)."""
        self.headers_seen.append(headers)
        if self.extra is not None:
            answer = self.extra(method, path, query, body)
            if answer is not None:
                return answer
        if method == "GET" and path == "/events":
            return 200, self._events(query)
        if method == "GET" and path == "/book":
            token = (query.get("token_id") or [""])[0]
            book = self.books.get(token)
            return (200, book) if book else (404, {"error": "No orderbook exists for the "
                                                            "requested token id"})
        if method == "POST" and path == "/books":
            if not isinstance(body, list):
                return 400, {"error": "body must be a list of {token_id}"}
            return 200, [self.books[str(p.get("token_id"))] for p in body
                         if isinstance(p, dict) and str(p.get("token_id")) in self.books]
        return 404, {"error": f"no route {method} {path}"}

    def _events(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        def flag(name: str) -> bool | None:
            v = (query.get(name) or [None])[0]
            return None if v is None else v.lower() == "true"

        limit = int((query.get("limit") or ["100"])[0])
        offset = int((query.get("offset") or ["0"])[0])
        active, closed = flag("active"), flag("closed")
        rows = [e for e in self.events
                if (active is None or bool(e.get("active", True)) == active)
                and (closed is None or bool(e.get("closed", False)) == closed)]
        return rows[offset:offset + limit]

    def start(self) -> SnapshotServer:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SnapshotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: serve a snapshot directory until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True, help="snapshot directory (events.json, books.json)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    args = parser.parse_args(argv)
    server = SnapshotServer.from_dir(args.dir, args.port)
    print(f"gamma_url={server.url} clob_url={server.url}", flush=True)
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()


if __name__ == "__main__":
    main()
