"""The one Jinja2 environment: strict about missing values, escaping by output format."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot.slacktext import escape


def templates_dir() -> Path:
    """Where the templates are: inside the installed wheel, or the repository's templates/."""
    try:
        return Path(str(resources.files("bot.templates")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "templates"


def build_environment(extra_dir: Path | None = None) -> Environment:
    """Templates from `extra_dir` (a team's overrides) win over the built-in ones."""
    search = [str(extra_dir)] if extra_dir else []
    search.append(str(templates_dir()))
    environment = Environment(
        loader=FileSystemLoader(search),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "htm", "xml"], default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    # Slack mrkdwn templates escape user text with `| slack` (no markup, no broadcast mentions).
    environment.filters["slack"] = escape
    return environment
