"""Prometheus Alertmanager's webhook (version 4): parsing and the words warroom posts about it.
Pure functions; the service that acts on them is `AlertService`."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import UsageError
from bot.incidents.enums import Severity
from bot.slack.text import escape, printable_data

MAX_BODY = 1024 * 1024
MAX_TITLE = 150
MAX_ALERTS_SHOWN = 10
DEFAULT_SEVERITY_LABELS = {
    "critical": Severity.SEV1,
    "page": Severity.SEV1,
    "high": Severity.SEV2,
    "error": Severity.SEV2,
    "warning": Severity.SEV3,
    "info": Severity.SEV4,
}


class Alert(BaseModel):
    """One alert of a notification: firing or resolved, its labels, annotations and times."""

    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime | None = None  # noqa: N815 (Alertmanager's names)
    endsAt: datetime | None = None  # noqa: N815
    generatorURL: str = ""  # noqa: N815
    fingerprint: str = ""


class Notification(BaseModel):
    """One webhook call: a group of alerts, firing or resolved."""

    model_config = ConfigDict(extra="allow")

    version: Literal["4"]
    groupKey: str = Field(min_length=1)  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    externalURL: str = ""  # noqa: N815
    truncatedAlerts: int = 0  # noqa: N815
    alerts: list[Alert] = Field(min_length=1)


def parse_notification(body: bytes) -> Notification:
    """The notification in `body`, or UsageError saying what is wrong with it."""
    if len(body) > MAX_BODY:
        raise UsageError(f"body too large: over {MAX_BODY} bytes, at most {MAX_BODY}")
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"body is not JSON: {exc}") from None
    except RecursionError:
        raise UsageError("body is not JSON: nested too deeply") from None
    try:
        # Labels and annotations become titles and posts: printable, as user text is.
        return Notification.model_validate(printable_data(raw))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "body"
        raise UsageError(f"not an Alertmanager v4 notification: {where}: {error['msg']}") from None


def group_hash(notification: Notification) -> str:
    """A fixed-length id for the notification's alert group: the SHA-256 of its group key."""
    return hashlib.sha256(notification.groupKey.encode()).hexdigest()


def notification_key(body: bytes) -> str:
    """The same notification delivered twice (Alertmanager retries) is recorded once."""
    return "alert:" + hashlib.sha256(body).hexdigest()


def title_for(notification: Notification) -> str:
    """The incident title: the summary or alert name on one line, cut to MAX_TITLE characters."""
    first = notification.alerts[0]
    title = (
        notification.commonAnnotations.get("summary")
        or first.annotations.get("summary")
        or notification.commonLabels.get("alertname")
        or first.labels.get("alertname")
        or "Alert from Alertmanager"
    )
    title = " ".join(title.split())
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"


def is_private(notification: Notification) -> bool:
    """Whether the group declares a private incident: a `private` label of `true` (any case),
    common to the group or on any of its alerts."""
    labels = [notification.commonLabels, *(a.labels for a in notification.alerts)]
    return any(str(each.get("private", "")).strip().lower() == "true" for each in labels)


def severity_for(notification: Notification, mapping: dict[str, str], default: str) -> str:
    """The severity the group's `severity` labels map to; the worst one when its alerts differ
    (a critical alert grouped with warnings is still critical). Labels match in any case."""
    known = {label.lower(): severity for label, severity in mapping.items()}
    labels = [
        alert.labels.get("severity", "")
        for alert in notification.alerts
        if alert.status == "firing" or notification.status == "resolved"
    ] or [notification.commonLabels.get("severity") or ""]
    # sev1 is the worst, and "sev1" < "sev2" < ...: the smallest name wins.
    return min(known.get(label.lower(), default) for label in labels)


def summary_data(notification: Notification) -> dict[str, Any]:
    """What the timeline keeps of a notification."""
    return {
        "group_key": notification.groupKey,
        "status": notification.status,
        "receiver": notification.receiver,
        "external_url": notification.externalURL,
        "alerts": [
            {
                "status": a.status,
                "labels": a.labels,
                "annotations": a.annotations,
                "starts_at": a.startsAt.isoformat() if a.startsAt else None,
                "ends_at": a.endsAt.isoformat() if a.endsAt else None,
                "generator_url": a.generatorURL,
                "fingerprint": a.fingerprint,
            }
            for a in notification.alerts
        ],
        "truncated_alerts": notification.truncatedAlerts,
    }


def alert_text(notification: Notification) -> str:
    """The alerts as a Slack message: labels, annotations and a link to the source."""
    icon = ":fire:" if notification.status == "firing" else ":white_check_mark:"
    count = len(notification.alerts)
    lines = [
        f"{icon} *Alertmanager: {count} alert{'s' if count != 1 else ''} "
        f"{notification.status}* ({escape(notification.receiver or 'webhook')})"
    ]
    for alert in notification.alerts[:MAX_ALERTS_SHOWN]:
        name = alert.labels.get("alertname", "alert")
        lines.append(f"• *{escape(name)}* [{alert.status}]")
        labels = ", ".join(
            f"{escape(k)}={escape(v)}" for k, v in sorted(alert.labels.items()) if k != "alertname"
        )
        if labels:
            lines.append(f"    labels: `{labels}`")
        for key, value in sorted(alert.annotations.items()):
            lines.append(f"    {escape(key)}: {escape(value)}")
        if alert.generatorURL.startswith(("http://", "https://")):
            lines.append(f"    <{_link_target(alert.generatorURL)}|source>")
    hidden = count - MAX_ALERTS_SHOWN + notification.truncatedAlerts
    if hidden > 0:
        lines.append(f"…and {hidden} more.")
    if notification.status == "resolved":
        lines.append(
            "_Alertmanager says resolved; the incident stays open until someone "
            "resolves it with `/incident resolve`._"
        )
    return "\n".join(lines)


def _link_target(url: str) -> str:
    """A URL made safe inside Slack's `<url|label>` markup."""
    return url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
