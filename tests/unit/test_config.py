"""Settings from the environment and `.env`, and the YAML config file: what they accept, and the
one-line error naming the setting when they are wrong (the CLI saying so: tests/app)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import DEFAULT_SEVERITIES, RateLimit, Settings, WarroomConfig, load_config
from bot.errors import ConfigError
from tests.support.cli import write_config

SETTING_VARIABLES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "DATABASE_URL",
    "WARROOM_CONFIG",
    "WARROOM_EXPORT_TOKEN",
    "WARROOM_ALERT_TOKEN",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No warroom variable set, and a working directory with no `.env` in it."""
    for name in SETTING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- Settings ------------------------------------------------------------------------


def test_settings_defaults(clean_env: Path) -> None:
    settings = Settings()
    assert settings.slack_bot_token is None
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.database_url == "sqlite:///warroom.db"
    assert settings.warroom_config is None


def test_settings_read_the_environment(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-env")
    monkeypatch.setenv("database_url", "sqlite:///other.db")
    settings = Settings()
    assert settings.slack_bot_token == "xoxb-env"
    assert settings.database_url == "sqlite:///other.db"


def test_settings_read_dot_env_and_the_environment_wins(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / ".env").write_text(
        "SLACK_BOT_TOKEN=xoxb-from-file\nSLACK_SIGNING_SECRET=from-file\n"
        "WARROOM_CONFIG=conf/warroom.yml\nSOMETHING_ELSE=ignored\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "from-env")
    settings = Settings()
    assert settings.slack_bot_token == "xoxb-from-file"
    assert settings.slack_signing_secret == "from-env"
    assert settings.warroom_config == Path("conf/warroom.yml")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://slack.com/api/", "https://slack.com/api/"),
        ("https://slack-gov.com/api", "https://slack-gov.com/api/"),
        ("http://127.0.0.1:9999/api", "http://127.0.0.1:9999/api/"),
    ],
)
def test_api_url_ends_with_a_slash(clean_env: Path, given: str, expected: str) -> None:
    assert Settings(slack_api_url=given).api_url == expected


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        ({}, "SLACK_BOT_TOKEN"),
        ({"slack_bot_token": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
        ({"slack_bot_token": "", "slack_signing_secret": "s"}, "SLACK_BOT_TOKEN"),
    ],
)
def test_require_names_the_first_missing_setting(
    clean_env: Path, present: dict[str, str], missing: str
) -> None:
    settings = Settings(**present)
    with pytest.raises(ConfigError, match=f"^{missing} is not set"):
        settings.require("slack_bot_token", "slack_signing_secret")


def test_require_passes_when_everything_is_set(clean_env: Path) -> None:
    Settings(slack_bot_token="xoxb-1", slack_signing_secret="s").require(
        "slack_bot_token", "slack_signing_secret"
    )


# -- the config file ---------------------------------------------------------------


def test_no_file_means_the_built_in_defaults() -> None:
    config = load_config(None)
    assert config == WarroomConfig()
    assert config.channel_pattern == "inc-{number}-{slug}"
    assert config.default_severity == "sev3"
    assert config.timezone == "UTC"
    assert config.postmortem_remind_every == timedelta(hours=24)
    assert config.policy("sev1").update_every == timedelta(minutes=30)
    assert config.policy("sev1").ack_within == timedelta(minutes=15)
    assert config.policy("sev1").postmortem_due == timedelta(hours=48)
    assert config.policy("sev2").update_every == timedelta(minutes=60)
    assert config.policy("sev2").ack_within == timedelta(minutes=30)
    assert config.policy("sev2").postmortem_due == timedelta(hours=72)
    assert config.policy("sev3").update_every == timedelta(minutes=120)
    assert config.policy("sev3").ack_within is None
    assert config.policy("sev3").postmortem_due == timedelta(days=5)
    assert config.policy("sev4").update_every is None


def test_declarations_are_limited_and_shutdown_bounded_by_default() -> None:
    config = load_config(None)
    assert config.declare_limit == RateLimit(count=5, window=timedelta(minutes=10))
    assert str(config.declare_limit) == "5/10m"
    assert config.shutdown_grace == timedelta(seconds=20)
    # A dumped config validates again, limit and all (tests build configs that way).
    assert WarroomConfig.model_validate(config.model_dump()) == config


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("declare_limit: 3/1h\n", RateLimit(count=3, window=timedelta(hours=1))),
        ("declare_limit: ' 10 / 30s '\n", RateLimit(count=10, window=timedelta(seconds=30))),
        ("declare_limit: null\n", None),
    ],
)
def test_the_declare_limit_from_the_file(
    tmp_path: Path, text: str, limit: RateLimit | None
) -> None:
    assert load_config(write_config(tmp_path, text)).declare_limit == limit


def test_the_backfill_window_is_a_week_unless_the_file_says(tmp_path: Path) -> None:
    assert load_config(None).backfill_window == timedelta(days=7)
    config = load_config(write_config(tmp_path, "backfill_window: 36h\n"))
    assert config.backfill_window == timedelta(hours=36)


def test_the_shutdown_grace_from_the_file(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "shutdown_grace: 2s\n"))
    assert config.shutdown_grace == timedelta(seconds=2)


def test_followup_keys_default_and_read_from_the_file(tmp_path: Path) -> None:
    defaults = WarroomConfig()
    assert defaults.followup_remind_every == timedelta(days=7)
    assert defaults.postmortem_requires_owners is True
    text = "followup_remind_every: 2d\npostmortem_requires_owners: false\n"
    config = load_config(write_config(tmp_path, text))
    assert config.followup_remind_every == timedelta(days=2)
    assert config.postmortem_requires_owners is False
    with pytest.raises(ConfigError, match="followup_remind_every: 'weekly' is not a duration"):
        load_config(write_config(tmp_path, "followup_remind_every: weekly\n"))


def test_private_incident_keys_default_and_read_from_the_file(tmp_path: Path) -> None:
    defaults = WarroomConfig()
    assert defaults.private_channel_pattern == "inc-{number}-private"
    assert defaults.private_invites is False and defaults.announce_private is False
    text = (
        "private_channel_pattern: 'sec-{number}'\nprivate_invites: true\nannounce_private: true\n"
    )
    config = load_config(write_config(tmp_path, text))
    assert config.private_channel_pattern == "sec-{number}"
    assert config.private_invites is True and config.announce_private is True
    with pytest.raises(ConfigError, match=r"private_channel_pattern: must contain \{number\}"):
        load_config(write_config(tmp_path, "private_channel_pattern: 'sec-{slug}'\n"))


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n", "{}\n"])
def test_an_empty_file_means_the_defaults(tmp_path: Path, text: str) -> None:
    assert load_config(write_config(tmp_path, text)) == WarroomConfig()


def test_the_design_example_loads(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
channel_pattern: "inc-{number}-{slug}"
announce_channel: C0123ABC
admins: [U0ADMIN1]
timezone: Europe/Paris
severities:
  sev1:
    update_every: 30m
    ack_within: 15m
    postmortem_due: 48h
    invite: [S0ONCALL, U0LEAD]
    escalate_to: [U0MANAGER]
  sev2: {update_every: 60m, ack_within: 30m, postmortem_due: 72h}
  sev3: {update_every: 120m, postmortem_due: 5d}
  sev4: {}
default_severity: sev2
postmortem_remind_every: 24h
redact_patterns: ['ACME-\\d+']
""",
    )
    config = load_config(path)
    assert config.announce_channel == "C0123ABC"
    assert config.admins == ["U0ADMIN1"]
    assert config.zone.key == "Europe/Paris"
    assert config.default_severity == "sev2"
    sev1 = config.policy("sev1")
    assert sev1.invite == ["S0ONCALL", "U0LEAD"]
    assert sev1.escalate_to == ["U0MANAGER"]
    assert sev1.ack_within == timedelta(minutes=15)
    assert config.policy("sev3").postmortem_due == timedelta(days=5)
    assert config.policy("sev4").update_every is None
    assert config.redact_patterns == ["ACME-\\d+"]


def test_a_severity_left_out_keeps_its_defaults(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "severities:\n  sev1: {invite: [U0LEAD]}\n"))
    assert config.policy("sev1").invite == ["U0LEAD"]
    assert config.policy("sev2") == DEFAULT_SEVERITIES["sev2"]
    assert set(config.severities) == {"sev1", "sev2", "sev3", "sev4"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Unknown keys are refused by name, wherever they are.
        ("colour: red\n", "unknown key 'colour'"),
        ("admin: [U1]\n", "unknown key 'admin'"),
        ("severities:\n  sev1: {invte: [U1]}\n", "unknown key 'severities.sev1.invte'"),
        # Durations
        (
            "severities:\n  sev1: {update_every: 30 minutes}\n",
            "severities.sev1.update_every: '30 minutes' is not a duration like 45s, 30m, 2h or 5d",
        ),
        (
            "severities:\n  sev2: {ack_within: 1h30m}\n",
            "severities.sev2.ack_within: '1h30m' is not a duration",
        ),
        (
            "severities:\n  sev3: {postmortem_due: 0d}\n",
            "severities.sev3.postmortem_due: '0d' is not a positive duration",
        ),
        ("postmortem_remind_every: soon\n", "postmortem_remind_every: 'soon' is not a duration"),
        # Severities
        ("severities:\n  sev5: {update_every: 5m}\n", "unknown severity 'sev5'; use sev1 to sev4"),
        ("severities:\n  SEV1: {}\n", "unknown severity 'SEV1'"),
        ("default_severity: critical\n", "default_severity 'critical' is not sev1 to sev4"),
        # Time zones
        ("timezone: Mars/Olympus_Mons\n", "timezone: unknown time zone 'Mars/Olympus_Mons'"),
        ("timezone: ../../etc/passwd\n", "timezone: unknown time zone"),
        # Channel pattern placeholders
        ("channel_pattern: 'inc-{number}-{team}'\n", "channel_pattern: unknown placeholder {team}"),
        ("channel_pattern: 'inc-{slug}'\n", "channel_pattern: must contain {number}"),
        ("channel_pattern: 'inc-{}'\n", "channel_pattern: unknown placeholder {}"),
        ("channel_pattern: 'inc-{number'\n", "channel_pattern:"),
        # Limits and the shutdown bound
        ("declare_limit: 5\n", "declare_limit: '5' is not a limit like 5/10m"),
        ("declare_limit: 0/10m\n", "declare_limit: '0/10m' is not a limit like 5/10m"),
        ("declare_limit: 5/10 minutes\n", "declare_limit: '5/10 minutes' is not a limit"),
        ("declare_limit: five/10m\n", "declare_limit: 'five/10m' is not a limit"),
        ("shutdown_grace: soon\n", "shutdown_grace: 'soon' is not a duration like 45s"),
        ("shutdown_grace: 0s\n", "shutdown_grace: '0s' is not a positive duration"),
        ("shutdown_grace: null\n", "shutdown_grace: needs a duration like 45s"),
        ("backfill_window: a week\n", "backfill_window: 'a week' is not a duration like 45s"),
        ("backfill_window: null\n", "backfill_window: needs a duration like 45s"),
        # Shapes
        ("admins: U0ADMIN\n", "admins:"),
        ("- just\n- a list\n", "the config must be a mapping"),
        ("colour: [unclosed\n", "not valid YAML (line 2)"),
    ],
)
def test_a_bad_file_is_refused_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.message.startswith(f"{path}: ")
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(ConfigError, match=f"WARROOM_CONFIG: {missing} does not exist"):
        load_config(missing)


@pytest.mark.parametrize(
    "pattern",
    ["inc-{number}-{slug}", "{date}-{severity}-{number}", "incident_{number}", "INC {number}"],
)
def test_channel_patterns_that_are_accepted(pattern: str) -> None:
    assert WarroomConfig(channel_pattern=pattern).channel_pattern == pattern
