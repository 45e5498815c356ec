"""GitHub's secret scanning partner program: signed alerts revoke the live keys they name.

The test plays GitHub: it makes a P-256 key pair, writes GitHub's keys JSON to the file
``CRAFTDESK_GITHUB_SCANNING_KEYS_FILE`` names, and signs the raw bodies it posts.
"""

import asyncio
import datetime as dt
import hashlib
import re
import secrets
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from craftdesk.app import create_app
from craftdesk.auth.tokens import ALPHABET, PREFIX, checksum, generate_key, parse_key
from craftdesk.config import Settings
from craftdesk.db import utcnow
from craftdesk.workspaces.queries import WorkspaceRow
from tests.conftest import TEST_PEPPER, Member, World, bearer, sign_in
from tests.keys.github_signing import URL, GitHubSigner, alert, body_of, write_keys_file

ENDPOINT = "/v1/secret-scanning/github"
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def github() -> GitHubSigner:
    return GitHubSigner()


@pytest.fixture
def keys_file(tmp_path: Path, github: GitHubSigner) -> Path:
    return write_keys_file(tmp_path / "github-secret-scanning-keys.json", github)


@pytest.fixture
def settings(database_url: str, keys_file: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        key_pepper=TEST_PEPPER,
        github_scanning_keys_file=keys_file,
    )


async def post_alerts(
    client: httpx.AsyncClient, github: GitHubSigner, *alerts: dict[str, str]
) -> httpx.Response:
    body = body_of(*alerts)
    return await client.post(ENDPOINT, content=body, headers=github.headers(body))


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def auth_key(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.get("/v1/auth/key", headers=bearer(key))


async def listed(client: httpx.AsyncClient, workspace: WorkspaceRow, owner: Member) -> list[Any]:
    await sign_in(client, workspace, owner)
    return list((await client.get("/v1/api-keys")).json()["data"])


async def events(client: httpx.AsyncClient, workspace: WorkspaceRow, owner: Member) -> list[Any]:
    await sign_in(client, workspace, owner)
    return list((await client.get("/v1/audit-events")).json()["data"])


def assert_invalid_signature(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_signature"
    assert response.headers["www-authenticate"] == 'Bearer realm="craftdesk"'


async def leaked_events(app: FastAPI) -> int:
    return int(
        await app.state.db.fetchval("SELECT COUNT(*) FROM audit_events WHERE action = 'key.leaked'")
    )


# ---- true positives ------------------------------------------------------------------------


async def test_a_live_key_found_in_public_is_revoked_at_once_and_labelled_true_positive(
    client: httpx.AsyncClient, world: World, github: GitHubSigner
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner, name="Deploy bot")
    assert (await auth_key(client, key)).status_code == 200

    response = await post_alerts(client, github, alert(key, source="commit"))

    assert response.status_code == 200, response.text
    assert response.json() == [
        {"token_hash": sha256(key), "token_type": "craftdesk_api_key", "label": "true_positive"}
    ]
    assert key not in response.text
    refused = await auth_key(client, key)
    assert refused.status_code == 401 and refused.json()["code"] == "key_revoked"

    [record] = await listed(client, workspace, owner)
    assert record["status"] == "revoked" and record["revoked_reason"] == "leaked"
    assert record["leaked_url"] == URL
    [leaked] = [e for e in await events(client, workspace, owner) if e["action"] == "key.leaked"]
    assert leaked["actor"]["type"] == "secret_scanning"
    assert leaked["target"] == {"type": "api_key", "id": record["id"], "label": "Deploy bot"}
    assert leaked["details"] == {
        "prefix": record["prefix"],
        "reason": "leaked",
        "url": URL,
        "source": "commit",
    }


async def test_several_alerts_are_labelled_in_order_and_only_ours_are_revoked(
    client: httpx.AsyncClient, world: World, github: GitHubSigner, app: FastAPI
) -> None:
    workspace, owner = await world.workspace()
    first = await world.key(workspace, owner, name="First")
    second = await world.key(workspace, owner, name="Second")
    kept = await world.key(workspace, owner, name="Kept")
    stranger = "ghp_" + secrets.token_hex(18)

    response = await post_alerts(
        client, github, alert(first), alert(stranger, type="other"), alert(second), alert(first)
    )

    assert response.status_code == 200, response.text
    assert [(a["token_hash"], a["token_type"], a["label"]) for a in response.json()] == [
        (sha256(first), "craftdesk_api_key", "true_positive"),
        (sha256(stranger), "other", "false_positive"),
        (sha256(second), "craftdesk_api_key", "true_positive"),
        (sha256(first), "craftdesk_api_key", "true_positive"),
    ]
    for key in (first, second):
        assert (await auth_key(client, key)).json()["code"] == "key_revoked"
    assert (await auth_key(client, kept)).status_code == 200
    assert await leaked_events(app) == 2  # the repeated token is revoked (and audited) once


async def test_an_already_revoked_key_is_a_true_positive_and_keeps_its_reason(
    client: httpx.AsyncClient, world: World, github: GitHubSigner, app: FastAPI
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    csrf = await sign_in(client, workspace, owner)
    [record] = (await client.get("/v1/api-keys")).json()["data"]
    revoked = await client.delete(f"/v1/api-keys/{record['id']}", headers=csrf)
    assert revoked.status_code == 200

    response = await post_alerts(client, github, alert(key))

    assert response.json()[0]["label"] == "true_positive"
    [after] = await listed(client, workspace, owner)
    assert after["revoked_reason"] == "revoked" and after["leaked_url"] is None
    assert after["revoked_at"] == revoked.json()["revoked_at"]
    assert await leaked_events(app) == 0
    assert (await auth_key(client, key)).json()["code"] == "key_revoked"


async def test_an_expired_key_is_a_true_positive_left_as_it_is(
    client: httpx.AsyncClient, world: World, github: GitHubSigner, app: FastAPI
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    async with app.state.db.transaction() as tx:
        await tx.execute("UPDATE api_keys SET expires_at = $1", utcnow() - dt.timedelta(minutes=1))

    response = await post_alerts(client, github, alert(key))

    assert response.json()[0]["label"] == "true_positive"
    [after] = await listed(client, workspace, owner)
    assert after["status"] == "expired" and after["revoked_reason"] is None
    assert await leaked_events(app) == 0


async def test_a_key_in_its_rotation_grace_period_is_revoked(
    client: httpx.AsyncClient, world: World, github: GitHubSigner
) -> None:
    workspace, owner = await world.workspace()
    old = await world.key(workspace, owner, name="Rotating")
    csrf = await sign_in(client, workspace, owner)
    [record] = (await client.get("/v1/api-keys")).json()["data"]
    rotated = await client.post(
        f"/v1/api-keys/{record['id']}/rotate",
        json={"expire_old_after_seconds": 3600},
        headers=csrf,
    )
    new = rotated.json()["key"]

    response = await post_alerts(client, github, alert(old))

    assert response.json()[0]["label"] == "true_positive"
    assert (await auth_key(client, old)).json()["code"] == "key_revoked"
    assert (await auth_key(client, new)).status_code == 200


# ---- false positives -----------------------------------------------------------------------


def _with_secret(key: str, secret: str) -> str:
    """A well-formed key (right checksum) with the same public id and another secret."""
    body = f"{PREFIX}{parse_key(key)}_{secret}"
    return body + checksum(body)


async def test_tokens_that_are_not_our_keys_are_false_positives_and_revoke_nothing(
    client: httpx.AsyncClient, world: World, github: GitHubSigner, app: FastAPI
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    damaged = key[:-1] + ("A" if key[-1] != "A" else "B")  # the checksum no longer matches
    unknown = generate_key().key  # well formed, never issued
    wrong_secret = _with_secret(key, "".join(secrets.choice(ALPHABET) for _ in range(32)))
    tokens = ["not a key", "cdk_", damaged, unknown, wrong_secret, key.upper(), key + "x"]

    response = await post_alerts(client, github, *(alert(token) for token in tokens))

    assert response.status_code == 200, response.text
    assert response.json() == [
        {"token_hash": sha256(t), "token_type": "craftdesk_api_key", "label": "false_positive"}
        for t in tokens
    ]
    assert (await auth_key(client, key)).status_code == 200
    assert await leaked_events(app) == 0


async def test_an_empty_alert_list_is_answered_with_no_labels(
    client: httpx.AsyncClient, github: GitHubSigner
) -> None:
    response = await post_alerts(client, github)
    assert response.status_code == 200 and response.json() == []


# ---- signatures ----------------------------------------------------------------------------


async def test_an_unknown_key_identifier_is_refused(
    client: httpx.AsyncClient, world: World, github: GitHubSigner, app: FastAPI
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    body = body_of(alert(key))

    response = await client.post(
        ENDPOINT, content=body, headers=github.headers(body, identifier="0" * 64)
    )

    assert_invalid_signature(response)
    assert (await auth_key(client, key)).status_code == 200
    assert await leaked_events(app) == 0


async def test_a_signature_by_another_key_is_refused(
    client: httpx.AsyncClient, world: World, github: GitHubSigner, app: FastAPI
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    impostor = GitHubSigner(identifier=github.identifier)  # same identifier, its own key
    body = body_of(alert(key))

    assert_invalid_signature(
        await client.post(ENDPOINT, content=body, headers=impostor.headers(body))
    )
    assert (await auth_key(client, key)).status_code == 200
    assert await leaked_events(app) == 0


async def test_a_signature_replayed_with_another_body_is_refused(
    client: httpx.AsyncClient, world: World, github: GitHubSigner, app: FastAPI
) -> None:
    """An attacker who saw one signed alert (about someone's key) cannot reuse its signature
    to revoke another key, nor alter the alert it signed by a single byte."""
    workspace, owner = await world.workspace()
    victim = await world.key(workspace, owner, name="Victim")
    signed_body = body_of(alert("ghp_" + "a" * 36, type="other"))
    headers = github.headers(signed_body)
    assert (await client.post(ENDPOINT, content=signed_body, headers=headers)).status_code == 200

    for body in (
        body_of(alert(victim)),
        body_of(alert("ghp_" + "a" * 36, type="other"), alert(victim)),
        signed_body + b" ",
        signed_body.replace(b"other", b"Other"),
    ):
        assert_invalid_signature(await client.post(ENDPOINT, content=body, headers=headers))
    assert (await auth_key(client, victim)).status_code == 200
    assert await leaked_events(app) == 0


@pytest.mark.parametrize(
    "drop", [("Github-Public-Key-Identifier",), ("Github-Public-Key-Signature",), ("both",)]
)
async def test_missing_signature_headers_are_refused(
    client: httpx.AsyncClient, world: World, github: GitHubSigner, drop: tuple[str]
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    body = body_of(alert(key))
    headers = github.headers(body)
    for name in (
        ("Github-Public-Key-Identifier", "Github-Public-Key-Signature")
        if drop == ("both",)
        else drop
    ):
        del headers[name]

    assert_invalid_signature(await client.post(ENDPOINT, content=body, headers=headers))
    assert (await auth_key(client, key)).status_code == 200


@pytest.mark.parametrize("signature", ["", "not base64!", "AAAA", "A" * 5000, "MEUCIQ==", "=" * 8])
async def test_a_malformed_signature_is_refused(
    client: httpx.AsyncClient, github: GitHubSigner, signature: str
) -> None:
    body = body_of(alert("cdk_x"))
    headers = {**github.headers(body), "Github-Public-Key-Signature": signature}
    assert_invalid_signature(await client.post(ENDPOINT, content=body, headers=headers))


async def test_nothing_of_the_body_is_read_before_the_signature_is_checked(
    client: httpx.AsyncClient, github: GitHubSigner
) -> None:
    """Malformed JSON with a bad signature is a 401 (not a 422): the body is judged only
    once it is known to come from GitHub."""
    body = b'{"not": "an array"'
    headers = {**github.headers(b"[]")}
    assert_invalid_signature(await client.post(ENDPOINT, content=body, headers=headers))


# ---- bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"token": "x", "type": "t"}',
        b'[{"type": "t"}]',
        b'[{"token": 7, "type": "t"}]',
        b"[" + b",".join([b'{"token":"x","type":"t"}'] * 1001) + b"]",
    ],
)
async def test_a_signed_body_that_is_not_an_alert_list_is_a_422(
    client: httpx.AsyncClient, github: GitHubSigner, body: bytes
) -> None:
    response = await client.post(ENDPOINT, content=body, headers=github.headers(body))
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


async def test_alerts_without_url_or_source_still_revoke(
    client: httpx.AsyncClient, world: World, github: GitHubSigner
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    body = b'[{"token": "%s", "type": "craftdesk_api_key", "url": null}]' % key.encode()

    response = await client.post(ENDPOINT, content=body, headers=github.headers(body))

    assert response.json()[0]["label"] == "true_positive"
    [record] = await listed(client, workspace, owner)
    assert record["revoked_reason"] == "leaked" and record["leaked_url"] is None


# ---- configuration -------------------------------------------------------------------------


@pytest.fixture
async def unconfigured(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(
        Settings(_env_file=None, database_url=database_url, key_pepper=TEST_PEPPER)  # type: ignore[call-arg]
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_without_the_keys_file_setting_the_endpoint_is_a_404(
    unconfigured: httpx.AsyncClient, github: GitHubSigner
) -> None:
    body = body_of(alert("cdk_x"))
    response = await unconfigured.post(ENDPOINT, content=body, headers=github.headers(body))
    assert response.status_code == 404
    assert "CRAFTDESK_GITHUB_SCANNING_KEYS_FILE" in response.json()["detail"]


async def test_the_keys_file_is_read_again_when_it_changes(
    client: httpx.AsyncClient, world: World, github: GitHubSigner, keys_file: Path
) -> None:
    """GitHub rotates its keys: the operator moves a new copy over the file, no restart.
    A file that cannot be read is a 503 (GitHub retries), not a 401."""
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    rotated = GitHubSigner()
    body = body_of(alert(key))
    assert_invalid_signature(
        await client.post(ENDPOINT, content=body, headers=rotated.headers(body))
    )

    await asyncio.to_thread(keys_file.write_text, "{not json")
    broken = await client.post(ENDPOINT, content=body, headers=rotated.headers(body))
    assert broken.status_code == 503 and broken.json()["code"] == "secret_scanning_unavailable"
    assert broken.headers["retry-after"]

    write_keys_file(keys_file, rotated, github)
    response = await client.post(ENDPOINT, content=body, headers=rotated.headers(body))
    assert response.status_code == 200 and response.json()[0]["label"] == "true_positive"


# ---- the pattern the README gives scanners -------------------------------------------------


def readme_block(language: str) -> str:
    [block] = re.findall(rf"```{language}\n(.*?)\n```", README.read_text(), flags=re.S)
    return str(block)


def key_pattern() -> re.Pattern[str]:
    return re.compile(readme_block("regex"))


def test_the_readme_pattern_finds_generated_keys_in_text() -> None:
    pattern = key_pattern()
    for _ in range(200):
        key = generate_key().key
        for text in (key, f"CRAFTDESK_API_KEY={key}\n", f'"Bearer {key}"', f"`{key}`."):
            assert [m.group() for m in pattern.finditer(text)] == [key]


def test_the_readme_pattern_matches_exactly_what_parse_key_accepts_in_shape() -> None:
    pattern = key_pattern()
    public_id = "".join(secrets.choice(ALPHABET) for _ in range(12))
    for length in (32, 33, 64, 105, 106):
        body = f"{PREFIX}{public_id}_" + "".join(secrets.choice(ALPHABET) for _ in range(length))
        key = body + checksum(body)
        try:
            parse_key(key)
            accepted = True
        except ValueError:
            accepted = False
        assert accepted == (length <= 105), length
        assert (pattern.fullmatch(key) is not None) == accepted, length


def test_the_readme_pattern_rejects_near_misses() -> None:
    pattern = key_pattern()
    key = generate_key().key
    public_id, tail = key[4:16], key[17:]
    near_misses = [
        "cdx_" + key[4:],  # another prefix
        "CDK_" + key[4:],
        f"cdk_{public_id[:11]}_{tail}",  # a public id one short
        f"cdk_{public_id}x_{tail}",  # one long
        f"cdk_{public_id}_{tail[:37]}",  # secret and checksum under 38 characters
        f"cdk_{public_id}-{tail}",
        f"cdk_{public_id}_{tail[:10]}-{tail[10:]}",
        f"cdk_{public_id}_{tail}" + "a" * (112 - len(tail)),  # over 128 characters
        "x" + key,  # inside a longer word
        key + "_x",
        "sk_live_" + secrets.token_hex(24),
    ]
    for text in near_misses:
        assert pattern.search(text) is None, text


def test_the_gitleaks_rule_uses_the_same_pattern() -> None:
    config = tomllib.loads(readme_block("toml"))
    [rule] = config["rules"]
    assert rule["regex"] == readme_block("regex")
    assert rule["id"] and rule["description"]
    assert "cdk_" in rule["keywords"]
