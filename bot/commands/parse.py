"""Parsing `/incident` text into a command. Pure functions; no Slack, no database."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.errors import UsageError
from bot.followups.rules import followup_number
from bot.incidents.enums import Role, Severity
from bot.incidents.refs import incident_number
from bot.slack.text import escape, to_plain

MAX_TITLE = 150

ROLE_ALIASES = {
    "commander": Role.COMMANDER,
    "ic": Role.COMMANDER,
    "lead": Role.COMMANDER,
    "incident-commander": Role.COMMANDER,
    "comms": Role.COMMS,
    "communications": Role.COMMS,
    "comm": Role.COMMS,
    "resolver": Role.RESOLVER,
    "tech": Role.RESOLVER,
    "technical": Role.RESOLVER,
}
SUBCOMMAND_ALIASES = {
    "declare": "declare",
    "open": "declare",
    "new": "declare",
    "role": "role",
    "ic": "role",
    "lead": "role",
    "roles": "roles",
    "note": "note",
    "list": "list",
    "help": "help",
    "status": "status",
    "sev": "sev",
    "update": "update",
    "ack": "ack",
    "resolve": "resolve",
    "reopen": "reopen",
    "postmortem": "postmortem",
    "export": "export",
    "followup": "followup",
    "action": "followup",
    "followups": "followups",
    "actions": "followups",
    "accept": "accept",
    "decline": "decline",
    "merge": "merge",
}
# Subcommands that act on one incident (the rest work anywhere).
INCIDENT_SUBCOMMANDS = frozenset(
    {
        "role",
        "roles",
        "note",
        "status",
        "sev",
        "update",
        "ack",
        "resolve",
        "reopen",
        "postmortem",
        "export",
        "accept",
        "decline",
        "merge",
    }
)

# Slack reads `<...>` as a link even in code spans, so placeholders are written escaped.
USAGE = {
    "declare": "/incident declare &lt;title&gt; [sev1|sev2|sev3|sev4] "
    "(private: declare --private &lt;title&gt;; to be triaged: declare --triage &lt;title&gt;)",
    "accept": "/incident accept (a triaged incident is real: investigate it)",
    "decline": "/incident decline &lt;reason&gt; (not an incident: end it)",
    "merge": "/incident merge INC-M (a duplicate of INC-M: end it there)",
    "role": "/incident role &lt;commander|comms|resolver&gt; &lt;@user&gt;",
    "roles": "/incident roles",
    "note": "/incident note &lt;text&gt;",
    "status": "/incident status &lt;investigating|identified|monitoring|resolved&gt;",
    "sev": "/incident sev &lt;1-4&gt;",
    "update": "/incident update &lt;customer-facing text&gt;",
    "ack": "/incident ack",
    "resolve": "/incident resolve [summary]",
    "reopen": "/incident reopen [reason]",
    "postmortem": "/incident postmortem [done &lt;url&gt;]",
    "export": "/incident export [md|html|json|csv]",
    "followup": "/incident followup &lt;text&gt; [@owner] [due YYYY-MM-DD|3d] (alias action)",
    "followup_change": "/incident followup done FU-N | drop FU-N &lt;reason&gt; | "
    "assign FU-N @person | due FU-N &lt;date&gt;",
    "followups": "/incident followups [mine]",
    "list": "/incident list",
    "help": "/incident help",
}

_SEVERITY = re.compile(r"^sev-?([1-4])$", re.IGNORECASE)
_USER_ESCAPED = re.compile(r"^<@([UW][A-Z0-9]{2,})(?:\|([^>]*))?>$")
_USER_HANDLE = re.compile(r"^@([\w.\-]{1,80})$")
_WORD_CHAR = re.compile(r"\w")
# Slack sends emoji in command text as shortcodes: `:fire:`, `:+1::skin-tone-2:`.
_EMOJI_CODE = re.compile(r":[a-z0-9_+'-]+:", re.IGNORECASE)


def _quoted(word: str) -> str:
    """A word of the user's, echoed back: read as plain text, cut short, and made inert."""
    return escape(to_plain(word)[:40])


@dataclass(frozen=True)
class UserRef:
    """A user named in a command: by id (`<@U1|ana>`, `<@U1>`) or by handle (`@ana`)."""

    user_id: str | None = None
    handle: str | None = None


@dataclass(frozen=True)
class Command:
    """A parsed `/incident` line: the subcommand, the incident it names (if any), its arguments."""

    name: str
    incident_number: int | None = None
    args: str = ""
    words: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Declaration:
    """A new incident's title, its severity when the command gave one, and whether it is
    private (`--private`)."""

    title: str
    severity: Severity | None
    private: bool = False
    triage: bool = False


@dataclass(frozen=True)
class RoleChange:
    """A role and the person to give it to."""

    role: Role
    user: UserRef


def parse_command(text: str) -> Command:
    """Split `/incident` text into an optional `INC-7`, a subcommand and its arguments."""
    words = text.split()
    number: int | None = None
    if words and words[0].upper().startswith("INC"):
        number = incident_number(words[0])
        if number is None:
            raise UsageError(f"`{_quoted(words[0])}` is not an incident id; write it like INC-7.")
        words = words[1:]
    if not words:
        return Command(name="help", incident_number=number)
    name = SUBCOMMAND_ALIASES.get(words[0].lower())
    if name is None:
        raise UsageError(f"Unknown subcommand `{_quoted(words[0])}`. Try `/incident help`.")
    rest = text.split(None, 2 if number is not None else 1)
    args = rest[-1] if len(rest) > (2 if number is not None else 1) else ""
    if words[0].lower() in ("ic", "lead"):
        # `/incident ic @ana` is `/incident role commander @ana`.
        args = f"commander {args}".strip()
    return Command(name=name, incident_number=number, args=args, words=tuple(args.split()))


def incident_number_in(text: str) -> int | None:
    """The incident a command names first (`INC-7 ...`), even when the rest will not parse."""
    words = text.split(None, 1)
    return incident_number(words[0]) if words and words[0].upper().startswith("INC") else None


def parse_declaration(args: str) -> Declaration:
    """`Checkout API returning 500s sev1` -> title and severity (the last word, if a severity);
    `--private` (a word of its own, anywhere) makes it a private incident, `--triage` one that
    starts in triage."""
    private, args = split_private_flag(args)
    triage, args = split_triage_flag(args)
    words = args.split()
    severity = None
    if words:
        match = _SEVERITY.match(words[-1])
        if match:
            severity = Severity(f"sev{match.group(1)}")
            words = words[:-1]
    title = " ".join(to_plain(" ".join(words)).split())
    if not title:
        raise UsageError(f"Give the incident a title: `{USAGE['declare']}`")
    if len(title) > MAX_TITLE:
        raise UsageError(
            f"That title is {len(title)} characters; keep it under {MAX_TITLE} "
            "and put the details in the channel."
        )
    if not _WORD_CHAR.search(_EMOJI_CODE.sub("", title).replace("_", "")):
        raise UsageError("Give the incident a title in words, not only emoji or punctuation.")
    return Declaration(title=title, severity=severity, private=private, triage=triage)


PRIVATE_FLAG = "--private"
# Slack may turn `--` into an em or en dash as it is typed.
_PRIVATE_FLAGS = frozenset({PRIVATE_FLAG, "\u2014private", "\u2013private"})


def split_private_flag(args: str) -> tuple[bool, str]:
    """Whether `args` carries `--private` as a word of its own, and the words without it."""
    return _split_flag(args, _PRIVATE_FLAGS)


TRIAGE_FLAG = "--triage"
_TRIAGE_FLAGS = frozenset({TRIAGE_FLAG, "\u2014triage", "\u2013triage"})


def split_triage_flag(args: str) -> tuple[bool, str]:
    """Whether `args` carries `--triage` as a word of its own, and the words without it."""
    return _split_flag(args, _TRIAGE_FLAGS)


def _split_flag(args: str, flags: frozenset[str]) -> tuple[bool, str]:
    words = args.split()
    kept = [w for w in words if w.lower() not in flags]
    if len(kept) == len(words):
        return False, args
    return True, " ".join(kept)


def parse_decline_reason(args: str) -> str:
    """Why an incident is declined, as people read it; UsageError when no reason is given."""
    reason = " ".join(to_plain(args).split())
    if not reason:
        raise UsageError(f"Say why it is declined: `{USAGE['decline']}`")
    return reason


def parse_merge_target(args: str) -> int:
    """The number of the incident to merge into (`INC-12`); UsageError for anything else."""
    words = args.split()
    number = incident_number(words[0]) if len(words) == 1 else None
    if number is None:
        raise UsageError(f"Usage: `{USAGE['merge']}`")
    return number


def parse_user(word: str) -> UserRef:
    """The person a word names, `<@U1|ana>` or `@ana`; UsageError if it names no one."""
    match = _USER_ESCAPED.match(word)
    if match:
        return UserRef(user_id=match.group(1), handle=match.group(2) or None)
    match = _USER_HANDLE.match(word)
    if match:
        return UserRef(handle=match.group(1))
    raise UsageError(f"`{_quoted(word)}` is not a person; mention them like @ana.")


def parse_role_change(args: str) -> RoleChange:
    """`ic @ana` -> the commander role and @ana; UsageError unless it is one role and one person."""
    words = args.split()
    if len(words) != 2:
        raise UsageError(f"Usage: `{USAGE['role']}`")
    role = ROLE_ALIASES.get(words[0].lower())
    if role is None:
        raise UsageError(f"`{_quoted(words[0])}` is not a role; use commander, comms or resolver.")
    return RoleChange(role=role, user=parse_user(words[1]))


def parse_note(args: str) -> str:
    """The note's text, trimmed; UsageError when there is none."""
    if not args.strip():
        raise UsageError(f"Usage: `{USAGE['note']}`")
    return args.strip()


# `/incident followup <change> FU-N ...`: the changes, and what each takes after the id.
FOLLOWUP_CHANGES = ("done", "drop", "assign", "due")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class FollowUpDraft:
    """A new follow-up as typed: its text, and the owner and due day it names, if any."""

    text: str
    owner: UserRef | None = None
    due: str | None = None


@dataclass(frozen=True)
class FollowUpChange:
    """One change to FU-`number`: done, drop (with a reason), assign (to someone), due (a day)."""

    kind: str
    number: int
    reason: str | None = None
    owner: UserRef | None = None
    due: str | None = None


def _is_user(word: str) -> bool:
    return bool(_USER_ESCAPED.match(word) or _USER_HANDLE.match(word))


def parse_followup(args: str) -> FollowUpDraft | FollowUpChange:
    """`done FU-3`, `drop FU-3 <reason>`, `assign FU-3 @bo`, `due FU-3 <day>`, else a new
    follow-up: `<text> [@owner] [due <day>]` (owner and due day last, in either order)."""
    words = args.split()
    if len(words) >= 2 and words[0].lower() in FOLLOWUP_CHANGES:
        number = followup_number(words[1])
        if number is not None:
            return _parse_change(words[0].lower(), number, args, words)
    spans = list(_WORD.finditer(args))
    owner: UserRef | None = None
    due: str | None = None
    while spans:
        if due is None and len(spans) >= 2 and spans[-2].group().lower() == "due":
            due, spans = spans[-1].group(), spans[:-2]
        elif owner is None and _is_user(spans[-1].group()):
            owner, spans = parse_user(spans[-1].group()), spans[:-1]
        else:
            break
    text = args[: spans[-1].end()].strip() if spans else ""
    if not text:
        raise UsageError(f"Say what has to be done: `{USAGE['followup']}`")
    return FollowUpDraft(text=text, owner=owner, due=due)


def _parse_change(kind: str, number: int, args: str, words: list[str]) -> FollowUpChange:
    rest = args.split(None, 2)[2].strip() if len(words) > 2 else ""
    if kind == "done":
        if rest:
            raise UsageError(f"Usage: `/incident followup done FU-{number}`")
        return FollowUpChange(kind=kind, number=number)
    if kind == "drop":
        if not rest:
            raise UsageError(
                f"Say why it is dropped: `/incident followup drop FU-{number} &lt;reason&gt;`"
            )
        return FollowUpChange(kind=kind, number=number, reason=rest)
    if kind == "assign":
        if len(words) != 3:
            raise UsageError(f"Usage: `/incident followup assign FU-{number} @person`")
        return FollowUpChange(kind=kind, number=number, owner=parse_user(words[2]))
    if len(words) != 3:
        raise UsageError(f"Usage: `/incident followup due FU-{number} YYYY-MM-DD` (or 3d)")
    return FollowUpChange(kind=kind, number=number, due=words[2])
