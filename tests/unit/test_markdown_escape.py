"""Markdown escaping for the Markdown export: user text pastes as text, never as markup."""

from __future__ import annotations

import pytest

from bot.exports.templating import markdown_escape


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<b>hi</b> & bye", "&lt;b&gt;hi&lt;/b&gt; &amp; bye"),
        ("[x](javascript:alert(1))", "\\[x\\](javascript:alert(1))"),
        ("a | b", "a \\| b"),
        ("# title\n> quote\n- item", "\\# title<br>&gt; quote<br>\\- item"),
        ("@channel and @here", "@\u2060channel and @\u2060here"),
        ("mail ana@example.com", "mail ana@example.com"),
        ("*bold* _it_ `code` ~~s~~", "\\*bold\\* \\_it\\_ \\`code\\` \\~\\~s\\~\\~"),
    ],
)
def test_markdown_escape(text: str, expected: str) -> None:
    assert markdown_escape(text) == expected
