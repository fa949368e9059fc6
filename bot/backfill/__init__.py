"""Back-fill: what was said in war rooms while warroom was down, read back from Slack's history."""
