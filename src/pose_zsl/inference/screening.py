"""Which recordings a model can take: the one place recordings are checked before ranking.

A recording is taken as float32 (T, M, V, C) (or (T, V, C) for one body) in the model's
skeleton layout. One of another layout (told by its joint count) is read as the model's when
``adapt_layout`` is ``"auto"`` and :mod:`pose_zsl.skeleton.adapt` has an adapter for the pair,
with a logged notice; any other misfit (layout, channels, no frames, non-finite or all-zero
coordinates) skips the recording with its reason, never the whole batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pose_zsl.inference.options import ADAPT_LAYOUT_AUTO
from pose_zsl.inference.recordings import Recording

logger = logging.getLogger(__name__)


@dataclass
class Screened:
    """The recordings a model can take (in its layout), the skipped ones with their reason and
    the adapted ones with the layout they were recorded in."""

    usable: list[Recording] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    adapted: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class RecordingScreen:
    """The input a model takes: its skeleton layout, joints and channels per joint."""

    layout: str
    num_joints: int
    in_channels: int

    def screen(self, recordings: Sequence[Recording], mode: str) -> Screened:
        """Sort ``recordings`` into usable, skipped and adapted ones; ``mode`` is a checked
        ``adapt_layout`` choice (see :func:`pose_zsl.inference.options.parse_adapt_layout`)."""
        screened = Screened()
        for recording in recordings:
            data = np.asarray(recording.data, dtype=np.float32)
            if data.ndim == 3:  # (T, V, C): one body
                data = data[:, None]
            data, source, problem = self._fit_layout(data, mode)
            if problem is None:
                problem = self._problem(data)
            if problem is not None:
                logger.warning("skipped recording %s: %s", recording.name, problem)
                screened.skipped.append((recording.name, problem))
                continue
            screened.usable.append(Recording(recording.name, data))
            if source is not None:
                screened.adapted.append((recording.name, source))
        self._log_adapted(screened.adapted)
        return screened

    def _mismatch(self, joints: int) -> str:
        """The start of every message about a recording with the wrong joint count."""
        from pose_zsl.skeleton.layouts import LAYOUT_NAMES, get_layout

        fits = [n for n in LAYOUT_NAMES if get_layout(n).num_joints == joints]
        hint = f" (a {' or '.join(fits)} recording?)" if fits else ""
        return (
            f"has {joints} joints{hint} but the model was trained on layout "
            f"{self.layout!r} with {self.num_joints} joints"
        )

    def _problem(self, data: np.ndarray) -> str | None:
        """Why a recording (already through :meth:`_fit_layout`) cannot be fed to this model,
        or None."""
        if data.ndim != 4:
            return f"expected a (T, M, V, C) array, got shape {data.shape}"
        joints, channels = data.shape[2:]
        if joints != self.num_joints:
            from pose_zsl.skeleton.adapt import can_adapt, layout_of_joint_count

            source = layout_of_joint_count(joints)
            advice = "use a model trained on recordings of this layout"
            if source is not None and can_adapt(source, self.layout):
                # only reached with adapt_layout="off": say what would have read it
                advice += (
                    f", or adapt_layout='auto' (pose-zsl predict --adapt-layout auto) to read "
                    f"its joints as {self.layout}"
                )
            return f"{self._mismatch(joints)}: {advice}"
        if channels != self.in_channels:
            return f"has {channels} channels per joint, the model expects {self.in_channels}"
        return _content_problem(data)

    def _fit_layout(self, data: np.ndarray, mode: str) -> tuple[np.ndarray, str | None, str | None]:
        """``(data, adapted_from, problem)``: with ``mode`` "auto", a (T, M, V, C) recording of
        another layout (told by its joint count) in the model's layout and the layout it was
        adapted from, or the adapter's refusal as ``problem``; otherwise ``data`` unchanged."""
        if mode != ADAPT_LAYOUT_AUTO or data.ndim != 4 or data.shape[2] == self.num_joints:
            return data, None, None
        from pose_zsl.skeleton.adapt import (
            LayoutAdaptationError,
            adapt_array,
            layout_of_joint_count,
        )

        source = layout_of_joint_count(data.shape[2])
        if source is None:  # unknown or ambiguous joint count: _problem explains it
            return data, None, None
        try:
            return adapt_array(data, source, self.layout), source, None
        except LayoutAdaptationError as error:
            return data, None, f"{self._mismatch(data.shape[2])}: {error}"

    def _log_adapted(self, adapted: Sequence[tuple[str, str]]) -> None:
        """One notice per source layout: the model sees another sensor's skeletons, which can
        cost accuracy, so this is a warning and not silent."""
        counts: dict[str, int] = {}
        for _, source in adapted:
            counts[source] = counts.get(source, 0) + 1
        for source, count in counts.items():
            logger.warning(
                "read %d recording(s) of layout %r as the model's layout %r (joints matched "
                "by name, see pose_zsl.skeleton.adapt; adapt_layout='off' skips them instead)",
                count,
                source,
                self.layout,
            )


def _content_problem(data: np.ndarray) -> str | None:
    """Why a (T, M, V, C) recording has nothing to window (the training's screening reasons)."""
    if data.shape[0] == 0 or data.shape[1] == 0:
        return "no frames"
    if not np.isfinite(data).all():
        return "non-finite coordinates"
    if not data.any():
        return "no valid frames (all coordinates are zero)"
    return None
