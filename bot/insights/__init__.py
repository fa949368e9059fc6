"""Insights across incidents: counts, durations, trends and comms over a window."""
