"""A local HTTP server speaking the Bedrock Runtime Converse wire format.

``POST /model/{modelId}/converse`` answers from a script of :class:`Reply` items, one per
request (the default reply is used when the script is empty), and records every request's
path, headers and JSON body, and the highest number of requests it held at once. A throttle
reply is what Bedrock sends: HTTP 400, ``x-amzn-ErrorType: ThrottlingException`` and
``{"message": ...}``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def tool_answer(
    answer: object, *, input_tokens: int = 1234, output_tokens: int = 321, stop: str = "tool_use"
) -> Reply:
    return Reply(
        body={
            "output": {
                "message": {
                    "role": "assistant",
                    "content": [
                        {
                            "toolUse": {
                                "toolUseId": "tooluse_test",
                                "name": "record_customer_analysis",
                                "input": answer,
                            }
                        }
                    ],
                }
            },
            "stopReason": stop,
            "usage": {
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
                "totalTokens": input_tokens + output_tokens,
            },
            "metrics": {"latencyMs": 420},
        }
    )


def throttled() -> Reply:
    return Reply(
        status=400,
        body={"message": "Too many requests, please wait before trying again."},
        headers={"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/"},
    )


def server_error() -> Reply:
    return Reply(
        status=500,
        body={"message": "Internal server error"},
        headers={"x-amzn-ErrorType": "InternalServerException"},
    )


@dataclass
class Request:
    path: str
    model_id: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: str


class ConverseServer:
    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.default = Reply(status=500, body={"message": "no reply scripted"})
        self.requests: list[Request] = []
        self.in_flight = 0  # requests since the last reset still being answered
        self.peak_in_flight = 0
        self._generation = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        with self._lock:
            self.script.clear()
            self.requests.clear()
            self._generation += 1
            self.in_flight = self.peak_in_flight = 0

    def _next(self, request: Request) -> tuple[Reply, int]:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            return (self.script.popleft() if self.script else self.default), self._generation

    def _done(self, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self.in_flight -= 1

    @contextmanager
    def running(self) -> Iterator[ConverseServer]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length).decode()
                parts = self.path.split("/")
                if len(parts) != 4 or parts[1] != "model" or parts[3] != "converse":
                    self._send(Reply(404, {"message": f"unknown path {self.path}"}))
                    return
                request = Request(
                    self.path, unquote(parts[2]), dict(self.headers.items()), json.loads(raw), raw
                )
                reply, generation = server._next(request)
                try:
                    if reply.delay:
                        time.sleep(reply.delay)
                    self._send(reply)
                finally:
                    server._done(generation)

            def _send(self, reply: Reply) -> None:
                payload = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("x-amzn-RequestId", "test-request")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a slow reply)

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        thread = threading.Thread(target=httpd.serve_forever, name="converse-server", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)
