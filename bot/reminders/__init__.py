"""Reminders: when they come due (pure rules), the scheduler that fires them, and the election
of the one replica that runs it."""
