"""The one exception type users see.

Every error a user can fix (bad file, wrong option, mismatched store) is raised
as `KwsKdError` with a message that names the file and the problem. The CLI
prints that message on one line and exits non-zero; anything else is a bug.
"""


class KwsKdError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class NotImplementedYet(KwsKdError):
    """A CLI surface that exists so scripts keep working, but has no body yet."""
