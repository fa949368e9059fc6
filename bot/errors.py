"""One exception family; each carries the sentence a user should see."""

from __future__ import annotations


class WarroomError(Exception):
    """An error whose message is fit to show the user as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(WarroomError):
    """A missing or bad setting; stops start-up with one line."""


class UsageError(WarroomError):
    """Malformed command input."""


class NotAllowedError(WarroomError):
    """The caller may not do this to this incident."""


class NotFoundError(WarroomError):
    """The thing named does not exist."""


class DuplicateCommandError(WarroomError):
    """The same command (the same trigger or form) was carried out already."""
