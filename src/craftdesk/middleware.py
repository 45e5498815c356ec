"""Pure-ASGI middleware: ``RequestContextMiddleware`` for what every response needs (a
request id, the body size limit, security headers, the quota headers of key-authenticated
requests, and HEAD), and ``CompressLargeResponses`` for gzip."""

import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.middleware.gzip import GZipResponder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from craftdesk.clients import Network, client_address
from craftdesk.db import utcnow
from craftdesk.errors import problem_response
from craftdesk.logs import request_id as current_request_id

access_log = logging.getLogger("craftdesk.access")

# Below about one TCP segment, compressing saves no round trip and costs CPU; the OpenAPI
# document and long lists are well over it. Level 6 (zlib's default) gzips the OpenAPI
# document (114 kB → 6.4 kB) in half the time of Starlette's 9, for 3 % more bytes.
GZIP_MINIMUM_BYTES = 1400
GZIP_LEVEL = 6
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, trusted_proxies: Sequence[Network] = ()
    ):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.trusted_proxies = list(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        peer = scope["client"][0] if scope.get("client") else None
        if self.trusted_proxies:
            forwarded = [
                value.decode("latin-1")
                for name, value in scope["headers"]
                if name == b"x-forwarded-for"
            ]
            state["client_ip"] = client_address(peer, forwarded, self.trusted_proxies)
        else:
            state["client_ip"] = client_address(peer, (), ())
        current_request_id.set(request_id)
        started = time.perf_counter()
        status = 500
        method = scope["method"]
        head = method == "HEAD"
        if head:
            # HEAD is GET without the body (RFC 9110): every GET route answers it, metered and
            # permission-checked as the GET it is.
            scope = {**scope, "method": "GET"}

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [(b"x-request-id", request_id.encode()), *_SECURITY_HEADERS]
                quota = scope["state"].get("quota")
                if quota is not None:
                    extra += quota.raw_headers(utcnow())
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await self._too_large(scope, receive, send_with_headers)
            return
        if length is None and b"transfer-encoding" in headers:
            # A body without Content-Length (chunked) is read whole first, up to the limit,
            # so that one over it gets the same 413 before anything else (no key checked,
            # nothing metered) as one that announces its length.
            body = await self._read_body(receive)
            if body is None:
                await self._too_large(scope, receive, send_with_headers)
                return
            receive = _replay(body, receive)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            key_id = state.get("key_id")
            if key_id is not None:
                scope["app"].state.activity.record(
                    key_id,
                    utcnow(),
                    method,
                    scope["path"],
                    status,
                    "ok" if status < 400 else state.get("problem_code", "error"),
                    state["client_ip"],
                    headers.get(b"user-agent", b"").decode("latin-1") or None,
                    request_id,
                    round((time.perf_counter() - started) * 1000, 2),
                )
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %s",
                    method,
                    scope["path"],
                    status,
                    extra={
                        "fields": {
                            "method": method,
                            "path": scope["path"],
                            "status": status,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        }
                    },
                )

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or ``None`` once it is over the limit."""
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return b"".join(chunks)
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Any) -> None:
        response = problem_response(
            413,
            "payload_too_large",
            f"The request body is over {self.max_body_bytes} bytes. Send less.",
        )
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that gives ``body`` first, then whatever comes next (a disconnect)."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


class CompressLargeResponses:
    """Starlette's gzip for responses of ``minimum_size`` bytes and more (and for streamed
    ones), at no cost to the small ones: Starlette's ``GZipMiddleware`` spends about 13 µs
    on every response, however small, while this looks at the response's Content-Length
    first and hands only the larger ones to Starlette's responders."""

    def __init__(self, app: ASGIApp, *, minimum_size: int, compresslevel: int):
        self.app = app
        self.minimum_size = minimum_size
        self.compresslevel = compresslevel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        forward: Any = None

        async def send_maybe_compressed(message: Message) -> None:
            nonlocal forward
            if forward is None:
                forward = self._forward(scope, message, send)
            await forward(message)

        await self.app(scope, receive, send_maybe_compressed)

    def _forward(self, scope: Scope, start: Message, send: Send) -> Any:
        """Where the messages of a response go, decided on its start."""
        for name, value in start.get("headers", ()):
            if name == b"content-length":
                if int(value) < self.minimum_size:
                    return send
                break
        accepts_gzip = any(
            name == b"accept-encoding" and b"gzip" in value for name, value in scope["headers"]
        )
        if not accepts_gzip:
            # Sent as it is, but saying that another Accept-Encoding gets another body.
            _add_vary(start)
            return send
        responder = GZipResponder(self.app, self.minimum_size, compresslevel=self.compresslevel)
        responder.send = send
        return responder.send_with_compression


def _add_vary(start: Message) -> None:
    headers = list(start.get("headers", ()))
    for index, (name, value) in enumerate(headers):
        if name == b"vary":
            if b"accept-encoding" not in value.lower():
                headers[index] = (name, value + b", Accept-Encoding")
            break
    else:
        headers.append((b"vary", b"Accept-Encoding"))
    start["headers"] = headers
