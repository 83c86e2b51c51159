""":class:`ZeroShotPredictor`: one trained variant, loaded once, ranking free-text action names.

A facade over the package's parts: the loaded variant and its checks
(:mod:`~pose_zsl.inference.variant`), reading recordings (:mod:`~pose_zsl.inference.recordings`)
and screening them for the model (:mod:`~pose_zsl.inference.screening`), candidate names
(:mod:`~pose_zsl.inference.candidates`), settings (:mod:`~pose_zsl.inference.options`) and
ranking (:mod:`~pose_zsl.inference.ranking`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pose_zsl.inference.candidates import CandidateMatcher, CandidateNames, Candidates
from pose_zsl.inference.files import (
    DEFAULT_EMBEDDING,
    DEFAULT_HEAD,
    DEFAULT_SPLIT,
    ModelFiles,
    load_model_files,
)
from pose_zsl.inference.options import (
    CALIBRATION_AUTO,
    DEFAULT_ADAPT_LAYOUT,
    DEFAULT_CALIBRATION,
    DEFAULT_TOP_K,
    RankOptions,
    calibration_constant,
    check_options,
    parse_adapt_layout,
    parse_calibration,
)
from pose_zsl.inference.ranking import (
    Ranking,
    empty_predictions,
    extract_features,
    score_candidates,
    top_k_table,
)
from pose_zsl.inference.recordings import (
    READ_MAX_BODIES,
    Recording,
    adapted_frame,
    as_recordings,
    read_recordings,
    skipped_frame,
)
from pose_zsl.inference.screening import RecordingScreen
from pose_zsl.inference.variant import TrainedVariant
from pose_zsl.text.embedders import Embedder

logger = logging.getLogger(__name__)


class ZeroShotPredictor(TrainedVariant):
    """One trained variant, loaded once, ranking free-text action names for recordings.

    Args:
        stgcn_artifact, head_artifact, label_embeddings, device, sources: see
            :class:`~pose_zsl.inference.variant.TrainedVariant`.
        calibration: the calibration dict (key ``gamma``); ``None`` ranks without calibrated
            stacking (a warning is logged when seen classes are among the candidates).
        batch_size: recordings per ST-GCN forward pass.
        base_dir: where relative paths in the label table (a Sent2Vec model) are resolved.
        text_model: the text model's file or folder, replacing the one the table records
            (see :func:`~pose_zsl.inference.label_table.text_model_path`).
        embedder: an embedder to use instead of rebuilding the table's (it must reproduce the
            table's vectors).
        adapt_layout: ``"auto"`` (default) reads a recording of another layout as the model's
            when an adapter exists (:mod:`pose_zsl.skeleton.adapt`), ``"off"`` skips it; the
            ``adapt_layout`` argument of :meth:`features` / :meth:`rank` overrides it per call.

    Raises:
        ModelMismatchError: the files do not belong together (other classes, embedder or
            dimensions).
        ValueError: an artefact that is not what it claims to be, or a bad setting.
    """

    def __init__(
        self,
        stgcn_artifact: Mapping[str, Any],
        head_artifact: Mapping[str, Any],
        label_embeddings: pd.DataFrame,
        calibration: Mapping[str, Any] | None,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        base_dir: str | Path | None = None,
        text_model: str | Path | None = None,
        embedder: Embedder | None = None,
        sources: Mapping[str, str] | None = None,
        adapt_layout: str = DEFAULT_ADAPT_LAYOUT,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.adapt_layout = parse_adapt_layout(adapt_layout)
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.text_model = Path(text_model) if text_model is not None else None
        super().__init__(
            stgcn_artifact,
            head_artifact,
            label_embeddings,
            calibration,
            device=device,
            sources=sources,
        )
        self._matcher = CandidateMatcher(
            self.table,
            self.vectors,
            self.seen_class_ids,
            base_dir=self.base_dir,
            text_model=self.text_model,
            embedder=embedder,
        )
        self._screen = RecordingScreen(self.layout, self.num_joints, self.in_channels)

    @classmethod
    def from_files(cls, files: ModelFiles, **options: Any) -> ZeroShotPredictor:
        """Load the four files of a variant (see :meth:`ModelFiles.for_variant`); ``options``
        are the constructor's keyword arguments."""
        return cls(**load_model_files(files), **options)

    @classmethod
    def from_project(
        cls,
        project_dir: str | Path,
        split: str = DEFAULT_SPLIT,
        head: str = DEFAULT_HEAD,
        embedding: str = DEFAULT_EMBEDDING,
        env: str | None = None,
        **options: Any,
    ) -> ZeroShotPredictor:
        """Load a variant from where environment ``env``'s catalog keeps it in a Kedro
        project."""
        options.setdefault("base_dir", project_dir)
        files = ModelFiles.for_variant(project_dir, split, head, embedding, env)
        return cls.from_files(files, **options)

    @property
    def embedder(self) -> Embedder:
        """The table's embedder, rebuilt on first use and checked against a stored vector."""
        return self._matcher.embedder

    def candidates(self, labels: Iterable[str] | CandidateNames) -> Candidates:
        """Vectors for the candidate names (see :mod:`pose_zsl.inference.candidates`); names
        not yet checked are checked first."""
        if not isinstance(labels, CandidateNames):
            labels = CandidateNames.check(labels)
        return self._matcher.match(labels)

    def read(
        self, paths: Iterable[str | Path], denoise: bool = True
    ) -> tuple[list[Recording], pd.DataFrame]:
        """:func:`read_recordings` with the body count the model needs."""
        return read_recordings(
            paths, max_bodies=max(READ_MAX_BODIES, self.max_bodies), denoise=denoise
        )

    def features(
        self, recordings: Sequence[Recording], adapt_layout: str | None = None
    ) -> tuple[np.ndarray, list[str], pd.DataFrame]:
        """``(N, D)`` features of the usable recordings, their names, and the skipped ones.

        ``adapt_layout`` (``"auto"`` / ``"off"``; default: the predictor's setting) decides
        whether recordings of another layout are adapted to the model's (see the class doc).
        """
        mode = self.adapt_layout if adapt_layout is None else parse_adapt_layout(adapt_layout)
        screened = self._screen.screen(recordings, mode)
        matrix = extract_features(self, screened.usable, self.batch_size)
        return matrix, [r.name for r in screened.usable], skipped_frame(screened.skipped)

    def calibration_constant(
        self, calibration: Any = DEFAULT_CALIBRATION, labels: Iterable[str] | None = None
    ) -> float | None:
        """The constant subtracted from training classes' scores for a ``calibration`` choice
        (see :func:`~pose_zsl.inference.options.parse_calibration`) and candidate ``labels``
        (``auto`` depends on how many are training classes, :meth:`gamma_for`; without
        ``labels``: the evaluation's constant); None: no subtraction."""
        gamma = self.gamma if labels is None else self.gamma_for(self.candidates(labels).seen)
        return calibration_constant(parse_calibration(calibration), gamma)

    def rank(
        self,
        recordings: Sequence[Recording | np.ndarray],
        labels: Iterable[str],
        top_k: int = DEFAULT_TOP_K,
        names: Sequence[str] | None = None,
        calibration: Any = DEFAULT_CALIBRATION,
        adapt_layout: str | None = None,
    ) -> Ranking:
        """Rank the candidate ``labels`` for every recording.

        ``recordings`` are :class:`Recording` objects or arrays (T, M, V, C) / (T, V, C);
        ``names`` label the arrays (default ``recording_<i>``). ``top_k`` is capped at the number
        of candidates. Scores are the head's (higher = better), minus the calibration constant
        (:meth:`calibration_constant`) for candidates that are training classes; ``raw_score``
        is before that subtraction; ``share`` is
        :func:`~pose_zsl.inference.ranking.candidate_shares` of the scores. ``adapt_layout`` is
        :meth:`features`'; the recordings it adapted are in the ranking's ``adapted`` table.
        """
        mode = self.adapt_layout if adapt_layout is None else adapt_layout
        options = check_options(top_k, calibration, mode)
        wrapped = as_recordings(recordings, names)
        return self.rank_checked(wrapped, CandidateNames.check(labels), options)

    def rank_checked(
        self, recordings: Sequence[Recording], labels: CandidateNames, options: RankOptions
    ) -> Ranking:
        """:meth:`rank` with its inputs already checked (an entry point checks them once, with
        its own names for the settings: see :mod:`pose_zsl.inference.options`)."""
        candidates = self._matcher.match(labels)
        gamma = calibration_constant(options.calibration, self.gamma_for(candidates.seen))
        if candidates.seen.any() and gamma is None and options.calibration == CALIBRATION_AUTO:
            logger.warning(
                "seen classes are among the candidates but no calibration constant is loaded: "
                "scores favour seen classes"
            )
        screened = self._screen.screen(recordings, options.adapt_layout)
        skipped, adapted = skipped_frame(screened.skipped), adapted_frame(screened.adapted)
        if not screened.usable:
            return Ranking(empty_predictions(), skipped, adapted)
        features = extract_features(self, screened.usable, self.batch_size)
        raw, calibrated = score_candidates(self, features, candidates, gamma)
        kept = [r.name for r in screened.usable]
        predictions = top_k_table(kept, candidates, raw, calibrated, options.top_k)
        return Ranking(predictions, skipped, adapted)

    def predict(
        self,
        recordings: Sequence[Recording | np.ndarray],
        labels: Iterable[str],
        top_k: int = DEFAULT_TOP_K,
        names: Sequence[str] | None = None,
        calibration: Any = DEFAULT_CALIBRATION,
        adapt_layout: str | None = None,
    ) -> pd.DataFrame:
        """:meth:`rank`'s predictions; the skipped recordings are in ``attrs["skipped"]``
        (a list of ``{"recording", "reason"}`` dicts), the adapted ones in ``attrs["adapted"]``
        (``{"recording", "layout"}`` dicts)."""
        ranking = self.rank(recordings, labels, top_k, names, calibration, adapt_layout)
        frame = ranking.predictions
        frame.attrs["skipped"] = ranking.skipped.to_dict("records")
        frame.attrs["adapted"] = ranking.adapted.to_dict("records")
        return frame
