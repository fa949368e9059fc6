"""warroom demo: a scripted incident played against a local stand-in for Slack."""
