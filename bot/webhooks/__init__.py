"""Webhooks out: timeline events POSTed, signed, to the receivers the config names."""
