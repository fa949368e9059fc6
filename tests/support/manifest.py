"""The app's manifest.yml, as Slack reads it."""

from __future__ import annotations

from typing import Any

import yaml

from tests.support.paths import REPO


def read_manifest() -> dict[str, Any]:
    loaded = yaml.safe_load((REPO / "manifest.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded
