"""The fake Slack Web API lives in the package (bot/demo/standin): `warroom demo` runs on it."""

from bot.demo.standin.slack_api import BOT_USER, Call, Channel, FakeSlack, Fault, SlackError

__all__ = ["BOT_USER", "Call", "Channel", "FakeSlack", "Fault", "SlackError"]
