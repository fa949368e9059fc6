"""Alertmanager's webhook as tests send it: version 4 notifications built like Alertmanager 0.25
builds them, and posted to warroom's real server with the alert token."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tests.support.warroom import Reply, Warroom, WarroomFactory

TOKEN = "alert-token-4f9c"
ALERT_PATH = "/hooks/alertmanager"
GROUP = '{}/{severity=~"critical|warning"}:{alertname="HighErrorRate"}'
GENERATOR = "http://prometheus.example:9090/graph?g0.expr=rate%28x%29&g0.tab=1"

# -- building notifications -----------------------------------------------------------------


def alert(
    name: str = "HighErrorRate",
    *,
    status: str = "firing",
    severity: str | None = "critical",
    summary: str | None = "Checkout error rate above 5%",
    instance: str = "checkout-1:8080",
    annotations: dict[str, str] | None = None,
    generator: str = GENERATOR,
) -> dict[str, Any]:
    """One alert as Alertmanager 0.25 puts it in a webhook."""
    labels = {"alertname": name, "instance": instance, "job": "checkout"}
    if severity is not None:
        labels["severity"] = severity
    notes = {"description": f"{instance} serves 7% errors"}
    if summary is not None:
        notes["summary"] = summary
    notes.update(annotations or {})
    return {
        "status": status,
        "labels": labels,
        "annotations": notes,
        "startsAt": "2024-05-01T10:00:00.000Z",
        "endsAt": "2024-05-01T10:20:00.000Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": generator,
        "fingerprint": hashlib.sha256(f"{name}/{instance}".encode()).hexdigest()[:16],
    }


def notification(
    *alerts: dict[str, Any], status: str | None = None, group_key: str = GROUP, **extra: Any
) -> dict[str, Any]:
    """A version 4 webhook body; common labels and annotations are what all alerts share."""
    alerts = alerts or (alert(),)
    firing = any(a["status"] == "firing" for a in alerts)
    common_labels = dict(alerts[0]["labels"])
    common_annotations = dict(alerts[0]["annotations"])
    for other in alerts[1:]:
        common_labels = {k: v for k, v in common_labels.items() if other["labels"].get(k) == v}
        common_annotations = {
            k: v for k, v in common_annotations.items() if other["annotations"].get(k) == v
        }
    body = {
        "receiver": "warroom",
        "status": status or ("firing" if firing else "resolved"),
        "alerts": list(alerts),
        "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonLabels": common_labels,
        "commonAnnotations": common_annotations,
        "externalURL": "http://alertmanager.example:9093",
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
    }
    body.update(extra)
    return body


# -- talking to warroom -----------------------------------------------------------------------


async def alert_room(
    make_warroom: WarroomFactory,
    config: dict[str, Any] | None = None,
    database_url: str | None = None,
) -> Warroom:
    return await make_warroom(
        config=config, database_url=database_url, env={"warroom_alert_token": TOKEN}
    )


async def post(
    room: Warroom,
    body: dict[str, Any] | list[Any] | bytes | str,
    *,
    token: str | None = TOKEN,
    headers: dict[str, str] | None = None,
) -> Reply:
    """POST to the webhook as Alertmanager does: JSON, `Authorization: Bearer <token>`."""
    data = (
        body
        if isinstance(body, bytes)
        else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
    )
    sent = {"Content-Type": "application/json", "User-Agent": "Alertmanager/0.25.0"}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    sent.update(headers or {})
    url = room.server.make_url(ALERT_PATH)
    async with room.http.post(url, data=data, headers=sent) as response:
        return Reply(response.status, await response.text())


async def fire(room: Warroom, body: dict[str, Any] | bytes) -> dict[str, Any]:
    """Deliver a notification that must be accepted, then wait for the Slack work it starts."""
    reply = await post(room, body)
    assert reply.status == 200, reply.text
    await room.settle()
    result: dict[str, Any] = reply.json
    return result
