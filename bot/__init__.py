"""warroom: a Slack app that runs incident war rooms."""
