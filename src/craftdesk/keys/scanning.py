"""GitHub's secret scanning partner program: ``POST /v1/secret-scanning/github``.

When GitHub finds a string matching the CraftDesk key pattern in public (a commit, an issue,
a gist, an npm package), it posts a JSON array of ``{"token", "type", "url", "source"}``
signed with ECDSA P-256 over SHA-256 of the raw body: the signature (base64 of its DER form)
in ``Github-Public-Key-Signature``, the key that made it in ``Github-Public-Key-Identifier``,
one of the keys GitHub publishes at https://api.github.com/meta/public_keys/secret_scanning.
The server does not fetch them: ``CRAFTDESK_GITHUB_SCANNING_KEYS_FILE`` names a copy of that
JSON, read at start-up and again whenever the file changes.

The order is fixed: the signature is checked over the raw bytes before anything of the body
is parsed (a bad, missing or unknown one is a 401 and nothing else happens); then each token
that is one of our keys (format, checksum, public id, and its HMAC compared in constant time)
is a true positive, and revoked at once if it is still live, all of them in one transaction,
audited as ``key.leaked`` by ``secret_scanning`` with the URL and source. The answer labels
each alert, in order, by the SHA-256 of its token (GitHub's false-positive feedback format).
A token is never logged nor echoed.

GitHub's scheme has no timestamp or nonce, so a signed alert could be replayed as it is; it
can only revoke keys that were found in public (again: harmless), and the signature binds
every byte of the body, so a replayed signature with another body is refused.
"""

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from craftdesk.audit.service import Actor
from craftdesk.auth.tokens import MalformedKey, hash_key, parse_key
from craftdesk.db import Db, utcnow
from craftdesk.errors import (
    NotFound,
    ProblemError,
    Unauthorized,
    Unprocessable,
    problem_responses,
)
from craftdesk.keys import queries
from craftdesk.keys import service as key_service
from craftdesk.keys.queries import ApiKeyRow
from craftdesk.keys.service import key_status
from craftdesk.openapi import PUBLIC
from craftdesk.routing import Route
from craftdesk.schemas import respond

logger = logging.getLogger("craftdesk.scanning")

router = APIRouter(prefix="/v1/secret-scanning", tags=["secret-scanning"], route_class=Route)

IDENTIFIER_HEADER = "Github-Public-Key-Identifier"
SIGNATURE_HEADER = "Github-Public-Key-Signature"
# A DER ECDSA P-256 signature is at most 72 bytes (96 in base64); headers longer than this
# are refused before decoding them.
MAX_SIGNATURE_CHARS = 200
MAX_IDENTIFIER_CHARS = 200
MAX_ALERTS = 1000
_SIGNATURE_ALGORITHM = ec.ECDSA(hashes.SHA256())


# ---- GitHub's public keys ------------------------------------------------------------------


class KeysFileError(ValueError):
    """The keys file is not GitHub's JSON of P-256 public keys."""


def parse_keys_file(raw: bytes) -> dict[str, ec.EllipticCurvePublicKey]:
    """GitHub's ``{"public_keys": [{"key_identifier", "key": PEM, "is_current"}]}`` as public
    keys by identifier. Every listed key counts, current or not (GitHub may still sign with
    the previous one while it rotates)."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeysFileError(f"not JSON ({exc})") from None
    entries = document.get("public_keys") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise KeysFileError('no "public_keys" list of keys')
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for number, entry in enumerate(entries, start=1):
        identifier = entry.get("key_identifier") if isinstance(entry, dict) else None
        pem = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(identifier, str) or not identifier or not isinstance(pem, str):
            raise KeysFileError(f'public key {number}: needs a "key_identifier" and a PEM "key"')
        try:
            key = load_pem_public_key(pem.encode())
        except (ValueError, TypeError) as exc:
            raise KeysFileError(f"public key {identifier}: not a PEM public key ({exc})") from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise KeysFileError(f"public key {identifier}: not an ECDSA P-256 key")
        keys[identifier] = key
    return keys


@dataclass
class GitHubKeys:
    """The keys file, read again whenever it changes (its modification time, size or inode):
    replace it (``mv`` a new copy over it) and the next alert is checked with the new keys,
    no restart. A file that cannot be read or parsed leaves no key: alerts then get 503
    until it is fixed, and each change is logged."""

    path: Path
    _stamp: tuple[int, int, int] | None = None
    _keys: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)
    problem: str | None = None

    def current(self) -> dict[str, ec.EllipticCurvePublicKey]:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if stamp == self._stamp:
                return self._keys
            self._stamp = stamp
            self._keys = parse_keys_file(self.path.read_bytes())
        except (OSError, KeysFileError) as exc:
            problem = str(exc) if isinstance(exc, KeysFileError) else (exc.strerror or str(exc))
            if problem != self.problem or self._keys:
                logger.warning(
                    "CRAFTDESK_GITHUB_SCANNING_KEYS_FILE %s: %s; secret scanning alerts are "
                    "refused (503) until it is fixed",
                    self.path,
                    problem,
                )
            self._keys, self.problem = {}, problem
            if isinstance(exc, OSError):
                self._stamp = None  # try again on the next alert
            return self._keys
        self.problem = None
        logger.info("secret scanning: %d GitHub public key(s) from %s", len(self._keys), self.path)
        return self._keys


def github_keys(path: Path | None) -> GitHubKeys | None:
    """The keys of ``CRAFTDESK_GITHUB_SCANNING_KEYS_FILE``, or ``None`` when it is unset."""
    return None if path is None else GitHubKeys(path)


# ---- the alerts and the answer -------------------------------------------------------------


class Alert(BaseModel):
    """One match GitHub found in public."""

    model_config = ConfigDict(extra="ignore")

    token: str = Field(description="The string that matched the CraftDesk key pattern.")
    type: str = Field(description="The secret type GitHub matched it as.")
    url: str = Field("", description="Where it was found in public (may be empty).")
    source: str = Field("", description="What it was found in: `content`, `commit`, `npm`, …")

    @field_validator("url", "source", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        # GitHub may leave them empty; PostgreSQL stores no NUL character in text.
        if value is None:
            return ""
        return value.replace("\x00", "") if isinstance(value, str) else value


Alerts = TypeAdapter(Annotated[list[Alert], Field(max_length=MAX_ALERTS)])


class AlertLabel(BaseModel):
    """GitHub's false-positive feedback for one alert."""

    token_hash: str = Field(description="SHA-256 of the token, in hex.")
    token_type: str = Field(description="The alert's `type`.")
    label: Literal["true_positive", "false_positive"] = Field(
        description="`true_positive`: a key of this server (revoked now if it was live); "
        "`false_positive`: not one."
    )


class SecretScanningUnavailable(ProblemError):
    status = 503
    code = "secret_scanning_unavailable"


_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"type": "array", "maxItems": MAX_ALERTS, "items": Alert.model_json_schema()}
        }
    },
}
_HEADERS = [
    {
        "name": IDENTIFIER_HEADER,
        "in": "header",
        "required": True,
        "description": "Which of GitHub's secret scanning public keys signed the body.",
        "schema": {"type": "string", "maxLength": MAX_IDENTIFIER_CHARS},
    },
    {
        "name": SIGNATURE_HEADER,
        "in": "header",
        "required": True,
        "description": "Base64 of the DER ECDSA P-256 signature, with SHA-256, of the raw body.",
        "schema": {"type": "string", "maxLength": MAX_SIGNATURE_CHARS},
    },
]


def _invalid_signature(detail: str) -> Unauthorized:
    return Unauthorized(
        "invalid_signature",
        f"{detail} Only GitHub's signed secret scanning alerts are accepted here.",
        token_sent=False,
    )


def verify_signature(
    keys: dict[str, ec.EllipticCurvePublicKey],
    identifier: str | None,
    signature: str | None,
    body: bytes,
) -> None:
    """Raise a 401 unless ``signature`` is a valid signature of exactly ``body`` by the key
    ``identifier`` names."""
    if not identifier or not signature:
        raise _invalid_signature(
            f"The {IDENTIFIER_HEADER} and {SIGNATURE_HEADER} headers are required."
        )
    key = keys.get(identifier) if len(identifier) <= MAX_IDENTIFIER_CHARS else None
    if key is None:
        raise _invalid_signature(f"{IDENTIFIER_HEADER} names no known GitHub public key.")
    try:
        if len(signature) > MAX_SIGNATURE_CHARS:
            raise ValueError("too long")
        der = base64.b64decode(signature, validate=True)
        key.verify(der, body, _SIGNATURE_ALGORITHM)
    except (InvalidSignature, ValueError, binascii.Error):
        raise _invalid_signature("The signature does not match the body.") from None


def _parse_alerts(body: bytes) -> list[Alert]:
    try:
        return Alerts.validate_json(body)
    except ValidationError as exc:
        parts = []
        for error in exc.errors(include_input=False)[:5]:
            where = ".".join(str(p) for p in error.get("loc", ())) or "body"
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
        raise Unprocessable(
            f"Send a JSON array of at most {MAX_ALERTS} alerts "
            '{"token", "type", "url", "source"}. ' + "; ".join(parts)
        ) from None


def _ours(
    alert: Alert, found: dict[str, tuple[ApiKeyRow, bytes]], pepper: bytes
) -> ApiKeyRow | None:
    """The stored key the alert's token is, if it is one: its format and checksum, its public
    id, and its HMAC, compared in constant time (as the key gate does)."""
    try:
        public_id = parse_key(alert.token)
    except MalformedKey:
        return None
    stored = found.get(public_id)
    if stored is None:
        return None
    key, key_hash = stored
    return key if hmac.compare_digest(key_hash, hash_key(pepper, alert.token)) else None


@router.post(
    "/github",
    summary="GitHub secret scanning alerts: revoke keys found in public",
    response_model=list[AlertLabel],
    responses=problem_responses(401, 404, 413, 422, 503),
    openapi_extra={
        **PUBLIC,
        "requestBody": _REQUEST_BODY,
        "parameters": _HEADERS,
    },
)
async def revoke_leaked_keys(request: Request, db: Db) -> Response:
    """For GitHub's secret scanning partner program: a signed JSON array of the strings
    matching the CraftDesk key pattern that GitHub found in public. Each one that is a key
    of this server is a `true_positive`, and revoked at once if it is live
    (`revoked_reason: "leaked"`, audit event `key.leaked` with the URL); any other is a
    `false_positive`. The answer has one label per alert, in order. A missing or bad
    signature, or one by a key not in `CRAFTDESK_GITHUB_SCANNING_KEYS_FILE`, is a 401
    `invalid_signature` and changes nothing; 404 when that setting is unset; 503 when its
    file cannot be read."""
    keyring: GitHubKeys | None = getattr(request.app.state, "github_keys", None)
    if keyring is None:
        raise NotFound(
            "GitHub secret scanning alerts are not enabled on this server "
            "(CRAFTDESK_GITHUB_SCANNING_KEYS_FILE is not set)."
        )
    keys = keyring.current()
    if not keys:
        raise SecretScanningUnavailable(
            "GitHub's public keys cannot be read on this server right now. Retry later.",
            headers={"Retry-After": "60"},
        )
    identifier = request.headers.get(IDENTIFIER_HEADER)
    signature = request.headers.get(SIGNATURE_HEADER)
    if not identifier or not signature:
        verify_signature(keys, identifier, signature, b"")  # raises: nothing to read
    body = await request.body()
    verify_signature(keys, identifier, signature, body)

    alerts = _parse_alerts(body)
    public_ids = set()
    for alert in alerts:
        with contextlib.suppress(MalformedKey):
            public_ids.add(parse_key(alert.token))
    found = {
        key.public_id: (key, key_hash)
        for key, key_hash in await queries.keys_by_public_id(db, sorted(public_ids))
    }
    pepper: bytes = request.app.state.settings.pepper
    matches = [_ours(alert, found, pepper) for alert in alerts]
    now = utcnow()
    live = [
        (alert, key)
        for alert, key in zip(alerts, matches, strict=True)
        if key is not None and key_status(key, now) == "active"
    ]
    revoked = 0
    if live:
        actor = Actor.secret_scanning(request)
        async with db.transaction() as tx:
            for alert, key in live:
                if await key_service.revoke_key(
                    tx,
                    key,
                    actor=actor,
                    reason="leaked",
                    details={"url": alert.url, "source": alert.source},
                ):
                    revoked += 1
                    logger.warning(
                        "secret scanning: key %d of workspace %d was found in public (%s) "
                        "and is revoked",
                        key.id,
                        key.workspace_id,
                        alert.source or "unknown source",
                    )
    logger.info(
        "secret scanning: %d alert(s), %d CraftDesk key(s), %d revoked now",
        len(alerts),
        sum(key is not None for key in matches),
        revoked,
    )
    labels = [
        {
            "token_hash": hashlib.sha256(alert.token.encode("utf-8", "surrogatepass")).hexdigest(),
            "token_type": alert.type,
            "label": "false_positive" if key is None else "true_positive",
        }
        for alert, key in zip(alerts, matches, strict=True)
    ]
    return respond(labels)
