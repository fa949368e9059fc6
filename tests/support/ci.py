"""What a test does when something it needs is not here."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(reason: str) -> NoReturn:
    """Something a test needs is not here: in CI (`.ci/run` sets CI=true) that fails the
    build; on a developer's machine the test is skipped, with the reason printed."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    print(f"skipping: {reason}")
    pytest.skip(reason)
