"""Signing alerts as GitHub's secret scanning does: an ECDSA P-256 key pair made by the test,
the keys file in GitHub's JSON, and bodies signed over their raw bytes."""

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

URL = "https://github.com/octocat/Hello-World/blob/12345600b9cbe38a219f39a9941c9319b600c002/.env"
TYPE = "craftdesk_api_key"


class GitHubSigner:
    """One of GitHub's signing keys, as the test plays GitHub."""

    def __init__(self, identifier: str | None = None):
        self.identifier = identifier or secrets.token_hex(32)
        self.private_key = ec.generate_private_key(ec.SECP256R1())

    def pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, body: bytes) -> str:
        signature = self.private_key.sign(body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()

    def headers(self, body: bytes, identifier: str | None = None) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Github-Public-Key-Identifier": identifier or self.identifier,
            "Github-Public-Key-Signature": self.sign(body),
        }


def keys_document(*signers: GitHubSigner) -> dict[str, Any]:
    return {
        "public_keys": [
            {"key_identifier": s.identifier, "key": s.pem(), "is_current": n == 0}
            for n, s in enumerate(signers)
        ]
    }


def write_keys_file(path: Path, *signers: GitHubSigner) -> Path:
    """Write GitHub's keys JSON as an operator would: a new file moved over the old one."""
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps(keys_document(*signers)))
    os.replace(staged, path)
    return path


def alert(token: str, url: str = URL, source: str = "content", type: str = TYPE) -> dict[str, str]:
    return {"token": token, "type": type, "url": url, "source": source}


def body_of(*alerts: dict[str, str]) -> bytes:
    """As GitHub sends it: compact JSON."""
    return json.dumps(list(alerts), separators=(",", ":")).encode()
