"""Settings from the environment and `.env`, and the YAML config file."""

from __future__ import annotations

import contextlib
import re
import string
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from bot.durations import format_duration, parse_duration
from bot.errors import ConfigError
from bot.incidents.enums import EVENT_KINDS, Severity

SEVERITIES = tuple(Severity)
CHANNEL_PATTERN_FIELDS = {"number", "slug", "severity", "date"}
_REACTION_NAME = re.compile(r"^[a-z0-9_+'-]+$")


def _duration_or_none(value: Any) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    return parse_duration(str(value))


Duration = Annotated[timedelta | None, BeforeValidator(_duration_or_none)]

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\S+)\s*$")


@dataclass(frozen=True)
class RateLimit:
    """At most `count` in any `window`: `5/10m` in the config file."""

    count: int
    window: timedelta

    def __str__(self) -> str:
        return f"{self.count}/{format_duration(self.window)}"


def _rate_limit_or_none(value: Any) -> RateLimit | None:
    if value is None or isinstance(value, RateLimit):
        return value
    match = _RATE.match(str(value))
    problem = f"{str(value)[:40]!r} is not a limit like 5/10m (at most 5 in any 10 minutes)"
    if not match or int(match.group(1)) < 1:
        raise ValueError(problem)
    try:
        window = parse_duration(match.group(2))
    except ValueError:
        raise ValueError(problem) from None
    return RateLimit(count=int(match.group(1)), window=window)


# Dumped as it is written (`5/10m`), so a dumped config validates again.
Limit = Annotated[
    RateLimit | None,
    BeforeValidator(_rate_limit_or_none),
    PlainSerializer(lambda limit: None if limit is None else str(limit)),
]


def _duration(value: Any) -> timedelta:
    if value is None:
        raise ValueError("needs a duration like 45s, 30m, 2h or 5d")
    duration = _duration_or_none(value)
    assert duration is not None
    return duration


RequiredDuration = Annotated[timedelta, BeforeValidator(_duration)]


def _election_every(value: Any) -> float:
    # ConfigError, not ValueError: it leaves pydantic as it is, one line naming the setting.
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not 0 < seconds <= 60:
        raise ConfigError(
            "WARROOM_ELECTION_EVERY must be a number of seconds, above 0 and at most 60"
        )
    return seconds


LOG_FORMATS = ("plain", "json")


def _log_format(value: Any) -> str:
    # ConfigError, like _election_every: one line naming the setting, not a silent default.
    text = str(value).strip().lower()
    if text not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT must be plain or json, not {str(value)[:40]!r}")
    return text


class Settings(BaseSettings):
    """Process settings, read once from the environment and `.env`."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///warroom.db"
    warroom_config: Path | None = None
    warroom_export_token: str | None = None
    # Where reviewers reach this server, for the signed links that `/incident export` posts.
    warroom_public_url: str | None = None
    warroom_alert_token: str | None = None
    # When set, /metrics wants it as a bearer token (incident counts are not for everyone).
    warroom_metrics_token: str | None = None
    # Seconds between scheduler elections on PostgreSQL: how often a follower tries to take
    # over, and a leader checks its lock (so roughly how long a failover takes).
    warroom_election_every: Annotated[float, BeforeValidator(_election_every)] = 1.0
    # `json` for one JSON object a log line.
    log_format: Annotated[str, BeforeValidator(_log_format)] = "plain"

    def require(self, *names: str) -> None:
        """Raise ConfigError naming the first of `names` that is unset."""
        for name in names:
            if not getattr(self, name):
                raise ConfigError(f"{name.upper()} is not set; put it in the environment or .env")

    def secret_values(self) -> list[str]:
        """Tokens and secrets, and any password in the database URL, for log masking."""
        values = [
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.warroom_export_token,
            self.warroom_alert_token,
            self.warroom_metrics_token,
        ]
        # An unparsable URL is reported where it is used, not here.
        with contextlib.suppress(Exception):
            values.append(make_url(self.database_url).password)
        return [v for v in values if v]

    @property
    def api_url(self) -> str:
        """The Web API base URL with the trailing slash slack-sdk expects."""
        return self.slack_api_url if self.slack_api_url.endswith("/") else self.slack_api_url + "/"


class SeverityPolicy(BaseModel):
    """What a severity means: who is pulled in, and how fast things must happen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    update_every: Duration = None
    ack_within: Duration = None
    postmortem_due: Duration = None
    invite: list[str] = Field(default_factory=list)
    escalate_to: list[str] = Field(default_factory=list)


class WebhookConfig(BaseModel):
    """One webhook: where timeline events of some kinds are POSTed, signed with `secret`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    secret: str
    events: list[str]
    # Private incidents' events too (their titles and text go to the receiver).
    include_private: bool = False

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parsed = urlsplit(url.strip())
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"{url[:60]!r} is not an http(s) URL")
        return url.strip()

    @field_validator("secret")
    @classmethod
    def _secret_set(cls, secret: str) -> str:
        if not secret.strip():
            raise ValueError("must not be empty (it signs every delivery)")
        return secret

    @field_validator("events")
    @classmethod
    def _known_kinds(cls, events: list[str]) -> list[str]:
        if not events:
            raise ValueError("name at least one event kind, like declared or resolved")
        for kind in events:
            if kind not in EVENT_KINDS:
                raise ValueError(
                    f"unknown event {str(kind)[:40]!r}; use timeline kinds like declared, "
                    "status_changed, severity_changed, customer_update, role_assigned, resolved"
                )
        return list(dict.fromkeys(events))


DEFAULT_SEVERITIES: dict[str, SeverityPolicy] = {
    Severity.SEV1: SeverityPolicy(
        update_every=timedelta(minutes=30),
        ack_within=timedelta(minutes=15),
        postmortem_due=timedelta(hours=48),
    ),
    Severity.SEV2: SeverityPolicy(
        update_every=timedelta(minutes=60),
        ack_within=timedelta(minutes=30),
        postmortem_due=timedelta(hours=72),
    ),
    Severity.SEV3: SeverityPolicy(
        update_every=timedelta(minutes=120), postmortem_due=timedelta(days=5)
    ),
    Severity.SEV4: SeverityPolicy(),
}


class WarroomConfig(BaseModel):
    """The YAML config file; every key optional, unknown keys refused by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel_pattern: str = "inc-{number}-{slug}"
    # A private incident's war room: no {slug} by default, so its title is not in the name.
    private_channel_pattern: str = "inc-{number}-private"
    # The severity's `invite` lists are applied to private incidents too.
    private_invites: bool = False
    # Announce a private incident, as "INC-N, a private incident, was declared" and no more.
    announce_private: bool = False
    announce_channel: str | None = None
    admins: list[str] = Field(default_factory=list)
    timezone: str = "UTC"
    severities: dict[str, SeverityPolicy] = Field(default_factory=lambda: dict(DEFAULT_SEVERITIES))
    default_severity: str = Severity.SEV3
    postmortem_remind_every: Duration = timedelta(hours=24)
    redact_patterns: list[str] = Field(default_factory=list)
    export_link_ttl: Duration = timedelta(hours=24)
    # Alert `severity` label -> warroom severity (added to critical/page: sev1, high/error: sev2,
    # warning: sev3, info: sev4); anything else gets default_severity.
    alert_severities: dict[str, str] = Field(default_factory=dict)
    # A folder of templates that replace the built-in ones of the same name.
    templates_dir: Path | None = None
    # Reactions that mark a war-room message as a key event (names without colons).
    key_event_reactions: list[str] = Field(default_factory=lambda: ["pushpin", "star"])
    # Declarations a person (not an alert, not an admin) may make in any window; null: no limit.
    declare_limit: Limit = RateLimit(count=5, window=timedelta(minutes=10))
    # How long `warroom serve` may take to stop after SIGTERM: posts still owed by then stay
    # in the outbox for the next start (or the leader of the other replicas).
    shutdown_grace: RequiredDuration = timedelta(seconds=20)
    # How often the owner of an overdue follow-up is reminded (first on its due day); null: once.
    followup_remind_every: Duration = timedelta(days=7)
    # `/incident postmortem done` waits until every open follow-up has an owner.
    postmortem_requires_owners: bool = True
    # Resolved incidents whose war rooms are still back-filled (read from Slack's history after
    # downtime) this long after resolution; open ones always are.
    backfill_window: RequiredDuration = timedelta(days=7)
    # Where timeline events are POSTed as they are committed (see the README's Webhooks out).
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    # A resolved incident's war room is archived this long after resolution, once its
    # post-mortem is done or not required; null: never.
    archive_after: Duration = timedelta(days=14)
    # A declined or merged incident's war room is archived this long after it closed; null: never.
    archive_closed_after: Duration = timedelta(hours=1)

    @field_validator("channel_pattern", "private_channel_pattern")
    @classmethod
    def _known_placeholders(cls, pattern: str) -> str:
        fields = {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
        unknown = fields - CHANNEL_PATTERN_FIELDS
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{sorted(unknown)[0]}}}; "
                f"use {', '.join('{' + f + '}' for f in sorted(CHANNEL_PATTERN_FIELDS))}"
            )
        if "number" not in fields:
            raise ValueError("must contain {number} so that every channel name is unique")
        return pattern

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}") from None
        return name

    @field_validator("key_event_reactions")
    @classmethod
    def _reaction_names(cls, names: list[str]) -> list[str]:
        # People write `:star:` as often as `star`; Slack's events carry the bare name.
        cleaned = [name.strip().strip(":").lower() for name in names]
        for name in cleaned:
            if not _REACTION_NAME.match(name):
                raise ValueError(f"{name!r} is not an emoji name like pushpin or star")
        return cleaned

    @field_validator("severities", mode="before")
    @classmethod
    def _merge_severities(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        unknown = set(value) - set(SEVERITIES)
        if unknown:
            raise ValueError(f"unknown severity {sorted(unknown)[0]!r}; use sev1 to sev4")
        # A severity the file leaves out keeps its defaults.
        merged: dict[str, Any] = dict(DEFAULT_SEVERITIES)
        merged.update({name: policy or {} for name, policy in value.items()})
        return merged

    @model_validator(mode="after")
    def _default_severity_exists(self) -> WarroomConfig:
        if self.default_severity not in SEVERITIES:
            raise ValueError(f"default_severity {self.default_severity!r} is not sev1 to sev4")
        for label, severity in self.alert_severities.items():
            if severity not in SEVERITIES:
                raise ValueError(f"alert_severities.{label}: {severity!r} is not sev1 to sev4")
        return self

    def policy(self, severity: str) -> SeverityPolicy:
        """The policy for a severity (an empty one when the file has none)."""
        return self.severities.get(severity, SeverityPolicy())

    def secret_values(self) -> list[str]:
        """The config file's secrets (each webhook's, and a password in its URL), for log
        masking."""
        values = [hook.secret for hook in self.webhooks]
        values += [p for hook in self.webhooks if (p := urlsplit(hook.url).password)]
        return values

    @property
    def zone(self) -> ZoneInfo:
        """The configured time zone, the one reminders and exports show times in."""
        return ZoneInfo(self.timezone)


def load_config(path: Path | None) -> WarroomConfig:
    """Read the YAML config, or the built-in defaults when there is no file."""
    if path is None:
        return WarroomConfig()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"WARROOM_CONFIG: {path} does not exist") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys to values")
    try:
        return WarroomConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_problem(exc)}") from None


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key {key!r}"
    message = error["msg"].removeprefix("Value error, ")
    return f"{key}: {message}" if key else message
