"""Pages and static files answered from memory (the dashboard's, the API reference's), under
a strict Content-Security-Policy: nothing inline, nothing from another host.

Each is read once; a reload costs a 304 (ETag). A client that accepts gzip gets a copy
compressed once, on first use, rather than on every request as ``GZipMiddleware`` would.
"""

import gzip
import hashlib
from pathlib import Path

import anyio
from fastapi import Request, Response

from craftdesk.middleware import GZIP_MINIMUM_BYTES

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


class Asset:
    def __init__(self, body: bytes, media_type: str):
        self.body = body
        self.media_type = media_type
        self.etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        self._gzipped: bytes | None = None

    @classmethod
    def from_path(cls, path: Path) -> "Asset":
        return cls(path.read_bytes(), MEDIA_TYPES[path.suffix])

    async def response(self, request: Request) -> Response:
        headers = {
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-cache",
            "ETag": self.etag,
            "Vary": "Accept-Encoding",
        }
        if request.headers.get("if-none-match") == self.etag:
            return Response(status_code=304, headers=headers)
        body = self.body
        if len(body) >= GZIP_MINIMUM_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
            if self._gzipped is None:  # off the event loop: the API reference's script
                self._gzipped = await anyio.to_thread.run_sync(_gzip, body)  # takes ~75 ms
            body = self._gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=self.media_type, headers=headers)


def _gzip(body: bytes) -> bytes:
    return gzip.compress(body, mtime=0)
