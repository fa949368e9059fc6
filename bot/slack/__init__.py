"""The Slack edge: the Web API gateway and its pacing, the bot's identity, Socket Mode, Slack
text, Bolt listeners and Block Kit builders. Slack's own types stay in here."""
