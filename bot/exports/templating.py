"""The one Jinja2 environment: strict about missing values, escaping by output format."""

from __future__ import annotations

import html
import re
from importlib import resources
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from bot.slack.text import escape, printable

_MD_INLINE = re.compile(r"([\\`*_\[\]|~])")
_MD_LINE_START = re.compile(r"^(\s*)([#>+=-]|\d+[.)])", re.MULTILINE)
# `@name` starting a word: GitHub, GitLab and wikis turn it into a mention that notifies.
_MD_MENTION = re.compile(r"(?<![\w@])@(?=\w)")
_WORD_JOINER = "\u2060"


def markdown_escape(text: str) -> str:
    """User text made inert in Markdown: no HTML, links, emphasis, headings, table breaks or
    mentions (`@channel` stays readable but notifies nobody); line breaks kept as `<br>` so
    that a list item or a table cell stays whole."""
    text = html.escape(text, quote=False)
    text = _MD_INLINE.sub(r"\\\1", text)
    text = _MD_LINE_START.sub(r"\1\\\2", text)
    text = _MD_MENTION.sub("@" + _WORD_JOINER, text)
    return "<br>".join(text.splitlines())


def _printable_value(value: object) -> object:
    """A template value with its strings made printable; Markup stays Markup (already escaped)."""
    if isinstance(value, Markup):
        return Markup(printable(str(value)))
    if isinstance(value, str):
        return printable(value)
    return value


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
        # Templates are named like `timeline.html.j2`: the format is the inner extension.
        autoescape=select_autoescape(["html", "html.j2", "htm", "xml"], default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        # Every value a template prints is made printable first, so text stored before warroom
        # cleaned it at the edge (or a team template's own fields) cannot smuggle controls.
        finalize=_printable_value,
    )
    # Slack mrkdwn templates escape user text with `| slack` (no markup, no broadcast mentions).
    environment.filters["slack"] = escape
    environment.filters["md"] = markdown_escape
    return environment
