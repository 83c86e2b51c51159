"""Errors raised by the skeleton readers."""

from __future__ import annotations

from os import PathLike


class SkeletonFormatError(ValueError):
    """A skeleton file (or file name) does not follow its format.

    The message reads ``"<path>:<line>: <reason>"`` (``"<path>: <reason>"`` when no single line is
    to blame), so it points an editor straight at the problem. ``line`` is 1-based.
    """

    def __init__(self, path: str | PathLike[str], line: int | None, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        location = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{location}: {reason}")

    def __reduce__(self):  # keep path/line/reason when the error crosses a process boundary
        return (type(self), (self.path, self.line, self.reason))
