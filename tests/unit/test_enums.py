"""The domain words as types: what the parser and the config hand on are enum members."""

from __future__ import annotations

import pytest

from bot.commands.parse import ROLE_ALIASES, parse_role_change
from bot.config import WarroomConfig
from bot.errors import UsageError
from bot.incidents.enums import ENDED_STATUSES, Role, Severity
from bot.incidents.lifecycle import parse_status
from storage.incidents import ENDED


@pytest.mark.parametrize(
    ("word", "role"),
    [
        ("commander", Role.COMMANDER),
        ("IC", Role.COMMANDER),
        ("incident-commander", Role.COMMANDER),
        ("communications", Role.COMMS),
        ("tech", Role.RESOLVER),
    ],
)
def test_role_aliases_give_role_members(word: str, role: Role) -> None:
    # `is`, not `==`: a bare "commander" string would pass an equality check.
    assert parse_role_change(f"{word} <@U0ANA>").role is role


def test_every_role_alias_is_a_role_and_every_role_is_its_own_alias() -> None:
    assert all(isinstance(role, Role) for role in ROLE_ALIASES.values())
    assert all(ROLE_ALIASES[role.value] is role for role in Role)


def test_configured_severities_follow_severity_order_whatever_the_file_order() -> None:
    config = WarroomConfig.model_validate(
        {"severities": {"sev4": {"update_every": "4h"}, "sev2": {}, "sev1": None}}
    )
    assert list(config.severities) == list(Severity)
    assert list(WarroomConfig().severities) == list(Severity)


def test_storage_knows_the_same_ended_statuses_as_the_domain() -> None:
    # storage/ speaks plain strings; its queries for open incidents must agree with the enum.
    assert set(ENDED) == {str(status) for status in ENDED_STATUSES}


@pytest.mark.parametrize("word", ["triage", "declined", "merged", "closed"])
def test_status_command_refuses_the_states_only_their_own_commands_reach(word: str) -> None:
    with pytest.raises(UsageError, match="investigating"):
        parse_status(word)
