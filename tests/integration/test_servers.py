"""The servers the integration tier depends on start and answer; if not, the run fails here
with the reason rather than somewhere deep in an adapter test."""

from __future__ import annotations

import socket

from tests.servers import ServerProcess


def _roundtrip(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        return s.recv(1024)


def test_redis_server_answers_ping(redis: ServerProcess) -> None:
    assert _roundtrip(redis.port, b"PING\r\n") == b"+PONG\r\n"


def test_moto_server_answers_http(moto: ServerProcess) -> None:
    reply = _roundtrip(moto.port, b"GET /moto-api/ HTTP/1.0\r\nHost: localhost\r\n\r\n")
    assert reply.startswith(b"HTTP/1.")
