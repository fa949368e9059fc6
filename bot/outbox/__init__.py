"""The outbox: messages the bot owes Slack, committed first and posted until Slack takes them."""
