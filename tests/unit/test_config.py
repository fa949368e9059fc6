"""Settings from the environment and `.env`, the YAML config file, and what the CLI says about
either when it is wrong: one line naming the setting, exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import DEFAULT_SEVERITIES, Settings, WarroomConfig, load_config
from bot.errors import ConfigError
from tests.support.paths import REPO

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


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "warroom.yml"
    path.write_text(text, encoding="utf-8")
    return path


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


# -- the command line ------------------------------------------------------------------


def run_cli(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`warroom ...` in a fresh process with a clean environment, run from `cwd`."""
    clean = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        # The code beside these tests, whatever is installed.
        "PYTHONPATH": str(REPO),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("warroom: ")
    for needle in needles:
        assert needle in lines[0]


def test_check_config_with_defaults(tmp_path: Path) -> None:
    result = run_cli("check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "config OK (built-in defaults)" in result.stdout


def test_check_config_with_a_good_file(tmp_path: Path) -> None:
    write_config(tmp_path, "timezone: Europe/Paris\nseverities:\n  sev1: {update_every: 15m}\n")
    result = run_cli("check-config", cwd=tmp_path, env={"WARROOM_CONFIG": "warroom.yml"})
    assert result.returncode == 0, result.stderr
    assert "config OK (warroom.yml)" in result.stdout


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("colour: red\n", "unknown key 'colour'"),
        ("severities:\n  sev1: {update_every: 30 minutes}\n", "severities.sev1.update_every"),
        ("severities:\n  sev7: {}\n", "unknown severity 'sev7'"),
        ("timezone: Nowhere/Land\n", "unknown time zone 'Nowhere/Land'"),
        ("channel_pattern: '{team}-{number}'\n", "unknown placeholder {team}"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_check_config_with_a_bad_file(tmp_path: Path, text: str, needle: str) -> None:
    write_config(tmp_path, text)
    result = run_cli("check-config", cwd=tmp_path, env={"WARROOM_CONFIG": "warroom.yml"})
    assert_one_clear_line(result, "warroom.yml", needle)


def test_check_config_reads_dot_env(tmp_path: Path) -> None:
    write_config(tmp_path, "colour: red\n")
    (tmp_path / ".env").write_text("WARROOM_CONFIG=warroom.yml\n", encoding="utf-8")
    assert_one_clear_line(run_cli("check-config", cwd=tmp_path), "unknown key 'colour'")


def test_check_config_with_a_missing_file(tmp_path: Path) -> None:
    result = run_cli("check-config", cwd=tmp_path, env={"WARROOM_CONFIG": "missing.yml"})
    assert_one_clear_line(result, "WARROOM_CONFIG", "missing.yml")


@pytest.mark.parametrize(
    ("env", "dot_env", "missing"),
    [
        ({}, "", "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "", "SLACK_SIGNING_SECRET"),
        ({"SLACK_SIGNING_SECRET": "s"}, "", "SLACK_BOT_TOKEN"),
        ({}, "SLACK_BOT_TOKEN=xoxb-from-dot-env\n", "SLACK_SIGNING_SECRET"),
    ],
)
def test_serve_names_the_missing_setting(
    tmp_path: Path, env: dict[str, str], dot_env: str, missing: str
) -> None:
    if dot_env:
        (tmp_path / ".env").write_text(dot_env, encoding="utf-8")
    result = run_cli("serve", "--port", "0", cwd=tmp_path, env=env)
    assert_one_clear_line(result, missing)
    assert not (tmp_path / "warroom.db").exists(), "nothing is created before settings are good"


def test_serve_refuses_a_bad_config_file_before_starting(tmp_path: Path) -> None:
    write_config(tmp_path, "colour: red\n")
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "WARROOM_CONFIG": "warroom.yml",
    }
    assert_one_clear_line(run_cli("serve", cwd=tmp_path, env=env), "unknown key 'colour'")


def test_serve_refuses_a_database_url_it_cannot_read(tmp_path: Path) -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "DATABASE_URL": "not a url, secret-password",
    }
    result = run_cli("serve", cwd=tmp_path, env=env)
    assert_one_clear_line(result, "DATABASE_URL")
    assert "secret-password" not in result.stderr
