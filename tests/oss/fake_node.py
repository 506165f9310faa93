"""A small identification node for tests: a real HTTP server speaking the Handle REST API.

PUT/GET/DELETE ``/api/handles/{handle}`` with the standard response codes, a batch endpoint
(``POST /api/batch``) in satiot's shape, a bearer token, and switches to fail: ``fail_next``
answers that many requests with HTTP 500 / code 2, ``drop_next`` closes that many connections
without an answer.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

HANDLE_RE = re.compile(r"^(?:86|88)(?:\.[0-9A-Za-z]+)+/\S{1,255}$")


class FakeNode:
    def __init__(self, token: str = "node-token") -> None:  # noqa: S107 - a test credential
        self.token = token
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.batch_sizes: list[int] = []
        self.fail_next = 0
        self.drop_next = 0
        self._lock = threading.Lock()
        node = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                url = urlsplit(self.path)
                with node._lock:
                    node.requests.append((method, url.path))
                    if node.drop_next:
                        node.drop_next -= 1
                        self.close_connection = True
                        self.connection.close()
                        return
                    if node.fail_next:
                        node.fail_next -= 1
                        self._reply(500, {"responseCode": 2, "message": "Server error"})
                        return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null") if length else None
                if self.headers.get("Authorization") != f"Bearer {node.token}":
                    self._reply(401, {"responseCode": 402, "message": "Authentication needed"})
                    return
                if url.path == "/api/batch" and method == "POST":
                    items = body["handles"]
                    node.batch_sizes.append(len(items))
                    results = [node.put(i["handle"], i["values"], True)[1] for i in items]
                    self._reply(200, {"responseCode": 1, "results": results})
                    return
                if not url.path.startswith("/api/handles/"):
                    self._reply(404, {"responseCode": 2, "message": "no such endpoint"})
                    return
                handle = unquote(url.path[len("/api/handles/") :])
                if method == "PUT":
                    overwrite = parse_qs(url.query).get("overwrite", ["true"])[0] != "false"
                    status, answer = node.put(handle, (body or {}).get("values"), overwrite)
                    self._reply(status, answer)
                elif method == "GET":
                    if handle not in node.records:
                        self._reply(
                            404,
                            {"responseCode": 100, "handle": handle, "message": "Handle Not Found"},
                        )
                    else:
                        self._reply(
                            200,
                            {"responseCode": 1, "handle": handle, "values": node.records[handle]},
                        )
                elif method == "DELETE":
                    if node.records.pop(handle, None) is None:
                        self._reply(
                            404,
                            {"responseCode": 100, "handle": handle, "message": "Handle Not Found"},
                        )
                    else:
                        self._reply(200, {"responseCode": 1, "handle": handle})

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_GET(self) -> None:
                self._handle("GET")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

            def do_POST(self) -> None:
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def put(self, handle: str, values: Any, overwrite: bool) -> tuple[int, dict[str, Any]]:
        if not HANDLE_RE.fullmatch(handle):
            return 400, {"responseCode": 102, "handle": handle, "message": "Invalid handle"}
        if not isinstance(values, list) or not all(
            isinstance(v, dict) and isinstance(v.get("index"), int) and v.get("type")
            for v in values
        ):
            return 400, {"responseCode": 202, "handle": handle, "message": "Invalid value"}
        with self._lock:
            exists = handle in self.records
            if exists and not overwrite:
                return 409, {
                    "responseCode": 101,
                    "handle": handle,
                    "message": "Handle already exists",
                }
            self.records[handle] = values
        return (200 if exists else 201), {"responseCode": 1, "handle": handle}

    def __enter__(self) -> FakeNode:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
