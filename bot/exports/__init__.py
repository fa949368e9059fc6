"""Exports: the timeline as HTML, Markdown, JSON and CSV; redaction; signed links; templates."""
