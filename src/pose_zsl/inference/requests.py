"""Request tables: the input of the ``inference`` pipeline and of the MLflow model.

One row per recording: ``skeleton`` is the flattened float array, ``shape`` its (T, M, V, C)
shape, ``labels`` the candidate action names for that recording (a list, or one
comma-separated string). A row that cannot be read, or whose candidate list is empty or has
duplicates, becomes a skipped row with the reason; the other rows are ranked, those sharing one
candidate list in one batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pose_zsl.inference.candidates import REQUEST_LABELS, CandidateNames, split_labels
from pose_zsl.inference.options import (
    DEFAULT_CALIBRATION,
    DEFAULT_TOP_K,
    RankOptions,
    check_options,
)
from pose_zsl.inference.ranking import Ranking, empty_predictions
from pose_zsl.inference.recordings import (
    Recording,
    adapted_frame,
    as_recordings,
    skipped_frame,
)

if TYPE_CHECKING:
    from pose_zsl.inference.predictor import ZeroShotPredictor

#: Columns of a request table (the ``inference`` pipeline's and the MLflow model's input):
#: ``skeleton`` is the flattened float array, ``shape`` its (T, M, V, C) shape, ``labels`` the
#: candidate action names for that recording.
REQUEST_COLUMNS = ("recording", "skeleton", "shape", "labels")


def requests_frame(
    recordings: Sequence[Recording | np.ndarray],
    labels: Iterable[str],
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """A request table (:data:`REQUEST_COLUMNS`): one row per recording, each with the same
    candidate names. ``skeleton`` is flattened (float32) with its shape beside it, which keeps
    MLflow's schema check fast for long recordings."""
    wrapped = as_recordings(recordings, names)
    candidates = list(labels)
    return pd.DataFrame(
        {
            "recording": pd.Series([r.name for r in wrapped], dtype="string"),
            "skeleton": [np.asarray(r.data, dtype=np.float32).ravel() for r in wrapped],
            "shape": [np.asarray(np.shape(r.data), dtype=np.int64) for r in wrapped],
            "labels": [list(candidates) for _ in wrapped],
        }
    )


def _request_recording(
    index: int, row: Mapping[str, Any]
) -> tuple[Recording | None, str, str | None]:
    """(recording, name, problem) of one request row."""
    name = row.get("recording")
    name = f"request_{index}" if name is None or pd.isna(name) else str(name)
    try:
        values = np.asarray(row["skeleton"], dtype=np.float32).ravel()
        shape = tuple(int(s) for s in np.asarray(row["shape"]).ravel())
    except (TypeError, ValueError) as error:
        return None, name, f"skeleton or shape is not numeric ({error})"
    expected = int(np.prod(shape)) if shape else -1
    if values.size != expected:
        return (
            None,
            name,
            f"skeleton has {values.size} values but shape {list(shape)} needs {expected}",
        )
    return Recording(name, values.reshape(shape)), name, None


def rank_requests(
    predictor: ZeroShotPredictor,
    requests: pd.DataFrame,
    top_k: int = DEFAULT_TOP_K,
    calibration: Any = DEFAULT_CALIBRATION,
    adapt_layout: str | None = None,
) -> Ranking:
    """Rank a request table; rows sharing one candidate list are predicted in one batch.

    ``labels`` may be a list of names or one comma-separated string per row; ``top_k``,
    ``calibration`` and ``adapt_layout`` are :meth:`ZeroShotPredictor.rank`'s, checked by
    :func:`~pose_zsl.inference.options.check_options`.

    A row whose recording cannot be read, or whose candidate list is empty or has duplicates,
    becomes a skipped row with the reason; the other rows are ranked.

    Raises:
        ValueError: a bad setting, or the table lacks ``skeleton``, ``shape`` or ``labels``.
    """
    mode = predictor.adapt_layout if adapt_layout is None else adapt_layout
    return rank_checked_requests(predictor, requests, check_options(top_k, calibration, mode))


def rank_checked_requests(
    predictor: ZeroShotPredictor, requests: pd.DataFrame, options: RankOptions
) -> Ranking:
    """:func:`rank_requests` with settings already checked (an entry point checks them with
    its own names for them).

    Raises:
        ValueError: the table lacks ``skeleton``, ``shape`` or ``labels``.
    """
    missing = sorted({"skeleton", "shape", "labels"} - set(requests.columns))
    if missing:
        raise ValueError(f"request table lacks columns {missing}; expected {list(REQUEST_COLUMNS)}")
    groups, skipped = _group_requests(requests)
    predictions, skipped_frames, adapted_frames = [], [skipped_frame(skipped)], [adapted_frame()]
    for labels, recordings in groups.items():
        ranking = predictor.rank_checked(recordings, labels, options)
        predictions.append(ranking.predictions)
        skipped_frames.append(ranking.skipped)
        adapted_frames.append(ranking.adapted)
    table = pd.concat(predictions, ignore_index=True) if predictions else empty_predictions()
    return Ranking(
        table,
        pd.concat(skipped_frames, ignore_index=True),
        pd.concat(adapted_frames, ignore_index=True),
    )


def _group_requests(
    requests: pd.DataFrame,
) -> tuple[dict[CandidateNames, list[Recording]], list[tuple[str, str]]]:
    """The readable rows' recordings by their checked candidate names, and the other rows as
    (recording, reason)."""
    groups: dict[CandidateNames, list[Recording]] = {}
    skipped: list[tuple[str, str]] = []
    for index, row in enumerate(requests.to_dict("records")):
        recording, name, problem = _request_recording(index, row)
        raw_labels = row["labels"]
        labels = (
            split_labels(raw_labels)
            if isinstance(raw_labels, str)
            else [str(label) for label in np.asarray(raw_labels, dtype=object).ravel()]
        )
        if recording is None:
            skipped.append((name, problem or "unreadable request"))
            continue
        try:
            candidates = CandidateNames.check(labels, REQUEST_LABELS)
        except ValueError as error:  # one bad row must not fail the others
            skipped.append((name, str(error)))
            continue
        groups.setdefault(candidates, []).append(recording)
    return groups, skipped
