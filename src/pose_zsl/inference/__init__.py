"""Zero-shot inference: new skeleton recordings + free-text action names -> ranked predictions.

:class:`ZeroShotPredictor` loads one trained variant (the split's ST-GCN, a zero-shot head, the
label-embedding table the head was trained against and its calibration constant) once, then
ranks any list of candidate action names for any number of recordings:

1. recordings are read like training data (NTU ``.skeleton`` with the same body denoising,
   MSR Action3D, ST-GCN ``.npy`` arrays) and windowed with the evaluation windowing the model
   was trained with (its artefact's ``window``, ``window_mode``, ``max_bodies``);
2. the frozen ST-GCN gives one pooled feature per recording (batched);
3. every candidate name is embedded: a name that is one of the label table's classes (after
   :func:`~pose_zsl.text.label_text.normalise_label`) reuses that class's stored vector, so it
   is exactly what the head was trained or evaluated with; a new phrase goes through the same
   text preparation (readable phrase, the table's templates) and the same embedder that
   produced the table;
4. the head scores features against the candidates; candidates that are *training* (seen)
   classes get the calibrated-stacking constant subtracted (generalised zero-shot, Chao et
   al.), and the top-k are returned. ``calibration`` chooses the constant: ``"auto"`` (the
   model's, chosen by the ``zsl_training`` pipeline: with every class name as a candidate the
   ranking is the evaluation's calibrated GZSL), ``"off"`` (raw scores) or a number.

Bad input is reported, not guessed around: unreadable recordings, recordings whose joint count
or channels do not fit the model, empty or all-zero recordings are skipped one by one with
their reason (see :class:`Ranking`); an empty or duplicated candidate list, inconsistent model
files and missing trained models raise with the file and the pipeline to run. One exception is
made on purpose: a recording of another skeleton layout (told by its joint count) is read as
the model's layout when :mod:`pose_zsl.skeleton.adapt` has an adapter for the pair, e.g. an NTU
(Kinect v2) recording for a Kinect v1 model, joint by joint, with a logged notice
(``adapt_layout="auto"``, the default; ``"off"`` skips it).

The parts, one module each:

- :mod:`~pose_zsl.inference.files`: where the four model files are, and loading them;
- :mod:`~pose_zsl.inference.variant`: the loaded models, checked to belong together;
- :mod:`~pose_zsl.inference.recordings`: reading recordings from files and folders;
- :mod:`~pose_zsl.inference.screening`: which recordings the model can take (layout fit);
- :mod:`~pose_zsl.inference.label_table`, :mod:`~pose_zsl.inference.candidates`: candidate
  names and their label vectors;
- :mod:`~pose_zsl.inference.options`: the ranking settings, checked once per call;
- :mod:`~pose_zsl.inference.ranking`: features, scores, calibration and the top-k table;
- :mod:`~pose_zsl.inference.requests`: request tables (the pipeline's and MLflow's input);
- :mod:`~pose_zsl.inference.predictor`: :class:`ZeroShotPredictor`, the facade over them.

No Kedro import here: the CLI (:mod:`pose_zsl.cli`), the ``inference`` pipeline and the MLflow
pyfunc model (:mod:`pose_zsl.mlflow_model`) are thin layers over this package.
"""

from pose_zsl.inference.candidates import (
    CLI_LABELS,
    REQUEST_LABELS,
    CandidateNames,
    Candidates,
    check_labels,
    read_labels_file,
    split_labels,
)
from pose_zsl.inference.files import (
    DEFAULT_EMBEDDING,
    DEFAULT_HEAD,
    DEFAULT_SPLIT,
    MissingModelError,
    ModelFiles,
    ModelMismatchError,
    load_calibration,
    load_torch_payload,
)
from pose_zsl.inference.label_table import embedder_from_table, infer_templates, text_model_path
from pose_zsl.inference.options import (
    ADAPT_LAYOUT_AUTO,
    ADAPT_LAYOUT_CHOICES,
    ADAPT_LAYOUT_OFF,
    CALIBRATION_AUTO,
    CALIBRATION_OFF,
    DEFAULT_ADAPT_LAYOUT,
    DEFAULT_CALIBRATION,
    DEFAULT_TOP_K,
    OptionNames,
    RankOptions,
    check_options,
    check_top_k,
    parse_adapt_layout,
    parse_calibration,
)
from pose_zsl.inference.predictor import ZeroShotPredictor
from pose_zsl.inference.ranking import (
    PREDICTION_COLUMNS,
    Ranking,
    candidate_shares,
    empty_predictions,
)
from pose_zsl.inference.recordings import (
    ADAPTED_COLUMNS,
    FOLDER_PATTERNS,
    READ_MAX_BODIES,
    SKIPPED_COLUMNS,
    Recording,
    adapted_frame,
    read_recordings,
    skipped_frame,
)
from pose_zsl.inference.requests import (
    REQUEST_COLUMNS,
    rank_checked_requests,
    rank_requests,
    requests_frame,
)

__all__ = [
    "ADAPTED_COLUMNS",
    "ADAPT_LAYOUT_AUTO",
    "ADAPT_LAYOUT_CHOICES",
    "ADAPT_LAYOUT_OFF",
    "CALIBRATION_AUTO",
    "CALIBRATION_OFF",
    "CLI_LABELS",
    "DEFAULT_ADAPT_LAYOUT",
    "DEFAULT_CALIBRATION",
    "DEFAULT_EMBEDDING",
    "DEFAULT_HEAD",
    "DEFAULT_SPLIT",
    "DEFAULT_TOP_K",
    "FOLDER_PATTERNS",
    "PREDICTION_COLUMNS",
    "READ_MAX_BODIES",
    "REQUEST_COLUMNS",
    "REQUEST_LABELS",
    "SKIPPED_COLUMNS",
    "CandidateNames",
    "Candidates",
    "MissingModelError",
    "ModelFiles",
    "ModelMismatchError",
    "OptionNames",
    "RankOptions",
    "Ranking",
    "Recording",
    "ZeroShotPredictor",
    "adapted_frame",
    "candidate_shares",
    "check_labels",
    "check_options",
    "check_top_k",
    "embedder_from_table",
    "empty_predictions",
    "infer_templates",
    "load_calibration",
    "load_torch_payload",
    "parse_adapt_layout",
    "parse_calibration",
    "rank_checked_requests",
    "rank_requests",
    "read_labels_file",
    "read_recordings",
    "requests_frame",
    "skipped_frame",
    "split_labels",
    "text_model_path",
]
