"""Local stand-ins for Slack, for `warroom demo` and the test suite: a Web API server that answers
with Slack's shapes and error codes and records every call."""
