"""Alerts on a key, computed from what the request log keeps (no scan of the log itself).
The key list's query hints which keys may have ``failing`` or ``new_ip`` alerts: a page
whose keys have none needs no query of its own, else one per kind, for the keys hinted.

- ``new_ip``: used in the last 24 h from an address not seen with this key in the 30 days
  before (a key's first address is not new: it was never used before);
- ``failing``: in the last hour, at least 20 requests, over half of them 401 or 403;
- ``revoked_in_use``: revoked or expired, and tried in the last 24 h;
- ``unused``: active and not used for 30 days (since it was created, if never).
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from craftdesk.activity import queries
from craftdesk.activity.queries import AlertWindows
from craftdesk.db import Queries
from craftdesk.keys.queries import ApiKeyRow, ListedKey
from craftdesk.keys.service import key_status

DAY = dt.timedelta(hours=24)
UNUSED = dt.timedelta(days=30)
FAILING_REQUESTS = 20


def windows(now: dt.datetime) -> AlertWindows:
    """The last hour's minutes (``failing``), and the last 24 h (``new_ip``)."""
    return AlertWindows(int(now.timestamp()) // 60 - 59, now - DAY)


async def alerts_for(
    db: Queries, keys: Sequence[ListedKey], now: dt.datetime
) -> dict[int, list[dict[str, Any]]]:
    """The alerts of each key, listed with its hints at ``now``: only the keys hinted have
    their minutes or addresses read, by one query each kind at most."""
    window = windows(now)
    refused = [listed.key.id for listed in keys if listed.refused_lately]
    recent = {
        row["api_key_id"]: (
            int(row["requests"]),
            int(row["failed"]),
            dt.datetime.fromtimestamp(int(row["first"]) * 60, dt.UTC),
        )
        for row in await queries.recent_outcomes(db, refused, window.failing_from_minute)
    }
    hinted = [listed.key.id for listed in keys if listed.new_address]
    new: dict[int, list[tuple[str, dt.datetime]]] = defaultdict(list)
    for row in await queries.new_addresses(db, hinted, window.new_ip_since):
        new[row["api_key_id"]].append((row["ip"], row["first_seen"]))
    return {
        listed.key.id: _alerts(listed.key, now, recent.get(listed.key.id), new.get(listed.key.id))
        for listed in keys
    }


def _alerts(
    key: ApiKeyRow,
    now: dt.datetime,
    recent: tuple[int, int, dt.datetime] | None,
    new_ips: list[tuple[str, dt.datetime]] | None,
) -> list[dict[str, Any]]:
    status = key_status(key, now)
    last = key.last_used_at or key.created_at
    unused_since = now - UNUSED
    if new_ips is None and recent is None and status == "active" and last > unused_since:
        return []  # most keys of a page: none of the four can hold
    alerts: list[dict[str, Any]] = [
        {
            "kind": "new_ip",
            "detail": f"Used from {ip}, an address not seen with this key in the 30 days "
            "before. Revoke the key if that was not you.",
            "since": since,
        }
        for ip, since in new_ips or ()
    ]
    if recent is not None:
        requests, failed, first = recent
        if requests >= FAILING_REQUESTS and failed * 2 > requests:
            alerts.append(
                {
                    "kind": "failing",
                    "detail": f"{failed} of its {requests} requests in the last hour were "
                    "refused (401 or 403): check its scope, its allowed IPs and the workspace "
                    "it is used with.",
                    "since": first,
                }
            )
    tried = key.last_refused_at
    if status != "active" and tried is not None and tried >= now - DAY:
        alerts.append(
            {
                "kind": "revoked_in_use",
                "detail": f"The key is {status} but still tried (last at {tried.isoformat()}): "
                "update the integration that sends it.",
                "since": key.refused_since or tried,
            }
        )
    if status == "active" and last <= unused_since:
        alerts.append(
            {
                "kind": "unused",
                "detail": "Not used for 30 days or more: revoke it if nothing needs it.",
                "since": last,
            }
        )
    return alerts
