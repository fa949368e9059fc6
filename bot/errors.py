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


class DeclareLimitError(NotAllowedError):
    """The caller has declared as many incidents as `declare_limit` allows for now."""


class NotFoundError(WarroomError):
    """The thing named does not exist."""


class DuplicateCommandError(WarroomError):
    """The same command (the same trigger or form) was carried out already."""


class SlackCallError(WarroomError):
    """Slack refused or failed a Web API call. `code` is Slack's error code (`name_taken`,
    `ratelimited`) or `http_<status>` when the answer was not Slack's JSON."""

    def __init__(self, method: str, code: str) -> None:
        super().__init__(f"Slack said `{code}`.")
        self.method = method
        self.code = code

    @property
    def reason(self) -> str:
        """Slack's error code, or `HTTP <status>` when Slack's answer was not its JSON."""
        return f"HTTP {self.code[5:]}" if self.code.startswith("http_") else self.code


class ViewNotOpenedError(WarroomError):
    """Slack did not open a modal; `reason` says why, for the person who asked."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The form did not open ({reason}).")
        self.reason = reason


def unexpected_failure_reply(reference: str) -> str:
    """What a user is told when something failed on our side; the reference finds the log."""
    return f"Something went wrong on our side (reference {reference})."
