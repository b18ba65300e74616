"""The peer for bench_graphql.py: a plain Starlette endpoint that returns fixed response bytes
with no per-request work. ``OMNIX_BENCH_BODY`` names the file holding the bytes."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = Path(os.environ["OMNIX_BENCH_BODY"]).read_bytes()
MEDIA = os.environ.get("OMNIX_BENCH_MEDIA", "application/json")


async def graphql(request: Request) -> Response:
    await request.body()
    return Response(BODY, media_type=MEDIA)


async def healthz(request: Request) -> Response:
    return Response(b"ok")


app = Starlette(routes=[Route("/graphql", graphql, methods=["POST"]), Route("/healthz", healthz)])
