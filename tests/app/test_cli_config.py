"""What the CLI says about settings and the config file when they are wrong, in its own process:
one line naming the setting, exit code 2, no traceback, nothing created."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.cli import run_cli, write_config


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
