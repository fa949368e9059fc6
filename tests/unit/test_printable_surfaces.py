"""Text stored before warroom cleaned it at the edge is shown printable on every surface: the
Slack escapes (escape, inert) and every value a template prints."""

from __future__ import annotations

from pathlib import Path

from markupsafe import Markup

from bot.exports.templating import build_environment
from bot.slack.text import escape, inert

STORED = "Checkout\x1b[31m down\x00 \u202eevil\u202c <@U1> @here"


def test_escape_makes_stored_text_printable_and_inert() -> None:
    shown = escape(STORED)
    assert "\x1b" not in shown and "\x00" not in shown and "\u202e" not in shown
    assert "[U+202E]evil[U+202C]" in shown
    assert "&lt;@U1&gt;" in shown and "@here" not in shown


def test_inert_makes_stored_text_printable_and_keeps_it_plain() -> None:
    shown = inert(STORED)
    assert "\x1b" not in shown and "\x00" not in shown and "\u202e" not in shown
    assert "Checkout[31m down" in shown
    assert "<@U1>" not in shown and "@here" not in shown


def test_every_value_a_template_prints_is_printable(tmp_path: Path) -> None:
    (tmp_path / "probe.html.j2").write_text("<p>{{ title }}</p>{{ trusted }}|{{ count }}")
    (tmp_path / "probe.md.j2").write_text("{{ title }}")
    environment = build_environment(tmp_path)
    html_page = environment.get_template("probe.html.j2").render(
        title=STORED, trusted=Markup("<b>bold</b>\x07"), count=3
    )
    assert "\x1b" not in html_page and "\x00" not in html_page and "\u202e" not in html_page
    assert "&lt;@U1&gt;" in html_page, "still escaped once"
    assert "<b>bold</b>|3" in html_page, "Markup is neither escaped twice nor broken"
    markdown = environment.get_template("probe.md.j2").render(title=STORED)
    assert markdown.startswith("Checkout[31m down") and "\x00" not in markdown
