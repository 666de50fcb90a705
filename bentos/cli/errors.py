"""The one error of the `modelguard` command: bad input, answered with exit code 2."""

from __future__ import annotations

EXIT_BAD_INPUT = 2


class BadInputError(Exception):
    """Input the command refuses; the message names the file, column or field and the reason."""
