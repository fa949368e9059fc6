"""The scheduler election's pure parts: its lock key per database and schema, and the interval
setting."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.errors import ConfigError
from storage.election import election_key


@pytest.mark.parametrize(
    ("one", "other"),
    [(("warroom", "public"), ("warroom", "t_abc")), (("warroom", "public"), ("other", "public"))],
)
def test_the_election_key_differs_per_database_and_schema(
    one: tuple[str, str], other: tuple[str, str]
) -> None:
    assert election_key(*one) == election_key(*one)
    assert election_key(*one) != election_key(*other)
    assert -(2**63) <= election_key(*one) < 2**63


@pytest.mark.parametrize("value", ["0", "-1", "61", "soon"])
def test_a_bad_election_interval_is_one_clear_error(value: str) -> None:
    with pytest.raises(ConfigError, match="WARROOM_ELECTION_EVERY"):
        Settings(_env_file=None, warroom_election_every=value)
    assert Settings(_env_file=None, warroom_election_every="0.25").warroom_election_every == 0.25
