"""The timeline: what Slack's events become (pure entries) and how they are stored once."""
