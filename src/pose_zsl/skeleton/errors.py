"""Errors raised by the skeleton readers."""

from __future__ import annotations

import math
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


def parse_floats(
    path: str | PathLike[str],
    lineno: int,
    fields: list[str],
    expected: int,
    what: str = "",
    hint: str = "",
) -> list[float]:
    """The ``expected`` finite numbers of one text line, split into ``fields``.

    ``what`` names the values in messages (``"joint"``: "expected 12 joint values"); ``hint``
    spells out their order ("expected 4 values (x y z confidence)").

    Raises:
        SkeletonFormatError: naming ``path``, ``lineno`` and the field, for a wrong number of
            values, a non-numeric value or a non-finite one.
    """
    kind = f"{what} " if what else ""
    if len(fields) != expected:
        detail = f" ({hint})" if hint else ""
        raise SkeletonFormatError(
            path, lineno, f"expected {expected} {kind}values{detail}, got {len(fields)}"
        )
    values = []
    for column, token in enumerate(fields, start=1):
        try:
            value = float(token)
        except ValueError:
            raise SkeletonFormatError(
                path, lineno, f"non-numeric {kind}value {token!r} (field {column})"
            ) from None
        if not math.isfinite(value):
            raise SkeletonFormatError(
                path, lineno, f"non-finite {kind}value {token!r} (field {column})"
            )
        values.append(value)
    return values
