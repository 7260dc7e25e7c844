"""The one exception type that reaches the user as a single clear line."""

from __future__ import annotations


class FnasError(Exception):
    """A user-facing error: the message names the file, field or node at fault and what is accepted.

    The CLI prints ``error: <message>`` on one line and exits non-zero; library code raises it only
    for problems in what the user gave (files, flags), never for internal bugs.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
