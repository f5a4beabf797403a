"""What can go wrong that the user should be told about.

    AlignError                 a known business failure; its text is shown to the user as-is
    ├── UsageError             the command is malformed (the verb's usage line is shown with it)
    │   ├── UnknownVerb        the verb does not exist (the list of verbs and a suggestion)
    │   └── BallotError        a vote the poll's mode does not allow, and which choices are wrong
    ├── NotFound               no such object here (also for objects of other channels/workspaces)
    ├── Forbidden              the object exists here but this person may not do that
    └── Conflict               the object's state forbids it ("P-9 closed on …")

Anything else is a bug: logged with a short reference that the user can quote.
"""

from __future__ import annotations


class AlignError(Exception):
    """A failure whose message is the user-facing text."""

    code = "error"

    def __init__(self, message: str, *, verb: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.verb = verb
        self.fields: dict[str, str] = {}
        """For a form: the message per input it concerns (shown next to those inputs)."""


class UsageError(AlignError):
    code = "usage"


class UnknownVerb(UsageError):
    code = "unknown_verb"

    def __init__(self, message: str, *, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion


class BallotError(UsageError):
    """`at` holds the positions (0-based, in the order given) of the choices that are wrong, so a
    form can show the message next to those inputs; empty when the ballot as a whole is wrong."""

    def __init__(self, message: str, *, at: tuple[int, ...] = ()) -> None:
        super().__init__(message, verb="vote")
        self.at = at


class NotFound(AlignError):
    code = "not_found"


class Forbidden(AlignError):
    code = "forbidden"


class Conflict(AlignError):
    code = "conflict"
