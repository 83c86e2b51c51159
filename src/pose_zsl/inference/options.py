"""The settings of a ranking (``top_k``, ``calibration``, ``adapt_layout``), checked in one place.

Each entry point checks its values once, with :func:`check_options`, naming them as its user
gives them (:class:`OptionNames`: ``--top-k`` for the CLI, ``inference.calibration`` for the
pipeline, "the calibration parameter" for the MLflow model; the Python API's names by default),
and hands the checked :class:`RankOptions` on
(:meth:`~pose_zsl.inference.ZeroShotPredictor.rank_checked`,
:func:`~pose_zsl.inference.requests.rank_checked_requests`), which do not check them again.
Candidate names are checked alike by :meth:`~pose_zsl.inference.candidates.CandidateNames.check`
and recordings by :mod:`pose_zsl.inference.screening`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_TOP_K = 5
#: The calibration choices besides a number: the model's own constant, or none.
CALIBRATION_AUTO = "auto"
CALIBRATION_OFF = "off"
DEFAULT_CALIBRATION = CALIBRATION_AUTO
#: ``adapt_layout`` choices: ``"auto"`` reads a recording of another layout as the model's when
#: :mod:`pose_zsl.skeleton.adapt` has an adapter for the pair; ``"off"`` skips it.
ADAPT_LAYOUT_AUTO = "auto"
ADAPT_LAYOUT_OFF = "off"
ADAPT_LAYOUT_CHOICES = (ADAPT_LAYOUT_AUTO, ADAPT_LAYOUT_OFF)
DEFAULT_ADAPT_LAYOUT = ADAPT_LAYOUT_AUTO


def parse_calibration(value: Any, name: str = "calibration") -> str | float:
    """``"auto"``, ``"off"`` or a finite float from a flag or parameter value (a string such
    as ``"0.3"`` or a number).

    Raises:
        ValueError: anything else; the message names ``name`` (the flag or parameter).
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text in (CALIBRATION_AUTO, CALIBRATION_OFF):
            return text
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if number is not None and np.isfinite(number):
            return number
    raise ValueError(
        f"{name} must be 'auto' (the model's calibration constant), 'off' (raw scores) or a "
        f"finite number to subtract from the training classes' scores, got {value!r}"
    )


def parse_adapt_layout(value: Any, name: str = "adapt_layout") -> str:
    """``"auto"`` or ``"off"`` (any case, surrounding spaces ignored) from a flag or parameter.

    Raises:
        ValueError: anything else; the message names ``name`` (the flag or parameter).
    """
    if isinstance(value, str) and value.strip().lower() in ADAPT_LAYOUT_CHOICES:
        return value.strip().lower()
    raise ValueError(
        f"{name} must be 'auto' (read a recording of another skeleton layout as the model's "
        f"when an adapter exists) or 'off' (skip it), got {value!r}"
    )


def check_top_k(value: Any, name: str = "top_k") -> int:
    """``value`` as an int of at least 1 (``int()`` raises for what it cannot convert).

    Raises:
        ValueError: a value below 1; the message names ``name`` (the flag or parameter).
    """
    if int(value) < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def calibration_constant(choice: str | float, gamma: float | None) -> float | None:
    """The constant a checked calibration ``choice`` subtracts from training classes' scores,
    given the model's own ``gamma``; None: no subtraction."""
    if choice == CALIBRATION_AUTO:
        return gamma
    if choice == CALIBRATION_OFF:
        return None
    return float(choice)


@dataclass(frozen=True)
class OptionNames:
    """How an entry point names each setting, for its error messages."""

    top_k: str = "top_k"
    calibration: str = "calibration"
    adapt_layout: str = "adapt_layout"


@dataclass(frozen=True)
class RankOptions:
    """Checked settings of a ranking; make them with :func:`check_options`."""

    top_k: int
    calibration: str | float
    adapt_layout: str


def check_options(
    top_k: Any,
    calibration: Any,
    adapt_layout: Any,
    names: OptionNames = OptionNames(),  # noqa: B008 - frozen, so one shared default is safe
) -> RankOptions:
    """The checked :class:`RankOptions` (see :func:`check_top_k`, :func:`parse_calibration`,
    :func:`parse_adapt_layout`); messages name the settings as ``names`` says.

    Raises:
        ValueError: the first bad setting, in the order top_k, calibration, adapt_layout.
    """
    checked_top_k = check_top_k(top_k, names.top_k)
    choice = parse_calibration(calibration, names.calibration)
    return RankOptions(checked_top_k, choice, parse_adapt_layout(adapt_layout, names.adapt_layout))
