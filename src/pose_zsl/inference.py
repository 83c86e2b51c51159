"""Zero-shot inference: new skeleton recordings + free-text action names -> ranked predictions.

:class:`ZeroShotPredictor` loads one trained variant (the split's ST-GCN, a zero-shot head, the
label-embedding table the head was trained against and its calibration constant) once, then
ranks any list of candidate action names for any number of recordings:

1. recordings are read like training data (NTU ``.skeleton`` with the same body denoising,
   MSR Action3D, ST-GCN ``.npy`` arrays) and windowed with the evaluation windowing the model
   was trained with (its artefact's ``window``, ``window_mode``, ``max_bodies``);
2. the frozen ST-GCN gives one pooled feature per recording (batched);
3. every candidate name is embedded: a name that is one of the label table's classes (after
   :func:`normalise_label`) reuses that class's stored vector, so it is exactly what the head was
   trained or evaluated with; a new phrase goes through the same text preparation (readable
   phrase, the table's templates) and the same embedder that produced the table;
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

No Kedro import here: the CLI (:mod:`pose_zsl.cli`), the ``inference`` pipeline and the MLflow
pyfunc model (:mod:`pose_zsl.mlflow_model`) are thin layers over this module.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from pose_zsl.skeleton.errors import SkeletonFormatError
from pose_zsl.text.embedders import (
    DEFAULT_SENTENCE_TRANSFORMER_NAMES,
    Embedder,
    embed_labels,
    embedding_matrix,
    make_embedder,
)
from pose_zsl.text.label_text import class_texts, normalise_label, readable_phrase

logger = logging.getLogger(__name__)

DEFAULT_SPLIT = "nearest"
DEFAULT_HEAD = "relation_net"
DEFAULT_EMBEDDING = "learned"
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
#: Bodies kept when reading NTU files: the ingestion default, so body selection matches training
#: (the model's own ``max_bodies`` is applied afterwards by the windowing, as in training).
READ_MAX_BODIES = 2
#: Largest cosine distance tolerated when the rebuilt embedder re-embeds a training class.
EMBEDDER_CHECK_TOLERANCE = 1e-3

PREDICTION_COLUMNS = (
    "recording", "rank", "label", "score", "share", "raw_score", "seen", "matched_class"
)  # fmt: skip
SKIPPED_COLUMNS = ("recording", "reason")
#: Recordings read through a layout adapter: the recording and the layout it was recorded in.
ADAPTED_COLUMNS = ("recording", "layout")
#: Columns of a request table (the ``inference`` pipeline's and the MLflow model's input):
#: ``skeleton`` is the flattened float array, ``shape`` its (T, M, V, C) shape, ``labels`` the
#: candidate action names for that recording.
REQUEST_COLUMNS = ("recording", "skeleton", "shape", "labels")

_RANDOM_MODEL = re.compile(r"gaussian\(seed=(-?\d+), like=([\w+-]+)\)")
_SENT2VEC_TOKENISED = " (wiki tokenisation)"


class MissingModelError(FileNotFoundError):
    """Trained model files are absent; the message lists them and the pipelines to run."""


class ModelMismatchError(ValueError):
    """Model files that do not belong together (other split, embedder or dimensions)."""


# ---------------------------------------------------------------------------------------------
# model files


@dataclass(frozen=True)
class ModelFiles:
    """The four files of one trained variant, where the Kedro catalog writes them."""

    stgcn: Path
    head: Path
    label_embeddings: Path
    calibration: Path
    #: the catalog entry of each file and the environment, when the files are the catalog's
    entries: dict[str, str] | None = field(default=None, compare=False)
    env: str | None = None

    @classmethod
    def for_variant(
        cls,
        project_dir: str | Path,
        split: str = DEFAULT_SPLIT,
        head: str = DEFAULT_HEAD,
        embedding: str = DEFAULT_EMBEDDING,
        env: str | None = None,
    ) -> ModelFiles:
        """Where the catalog of environment ``env`` (None: the default run environment) in
        ``project_dir`` keeps the variant's entries ``{split}.stgcn_model``,
        ``{split}.{head}.{embedding}.zsl_model``, ``label_embeddings_{embedding}`` and
        ``{split}.{head}.{embedding}.calibration``: read from the resolved catalog, not a copy
        of its paths."""
        from pose_zsl.environments import config_loader

        catalog = config_loader(env, project_dir)["catalog"]
        keys = {"split": split, "head": head, "embedding": embedding}

        entries = {
            "stgcn": "{split}.stgcn_model",
            "head": "{split}.{head}.{embedding}.zsl_model",
            "label_embeddings": "label_embeddings_{embedding}",
            "calibration": "{split}.{head}.{embedding}.calibration",
        }
        paths = {
            key: Path(project_dir) / catalog[entry]["filepath"].format(**keys)
            for key, entry in entries.items()
        }
        named = {key: entry.format(**keys) for key, entry in entries.items()}
        return cls(**paths, entries=named, env=env)

    def as_dict(self) -> dict[str, Path]:
        return {
            "stgcn": self.stgcn,
            "head": self.head,
            "label_embeddings": self.label_embeddings,
            "calibration": self.calibration,
        }

    def require(self) -> None:
        """Raise :class:`MissingModelError` naming every missing file and the command that
        makes them (Kedro runs just the nodes those catalog entries need)."""
        missing = {key: path for key, path in self.as_dict().items() if not path.is_file()}
        if not missing:
            return
        listing = "\n".join(f"  - {key}: {path}" for key, path in missing.items())
        command = "kedro run" + (f" --env {self.env}" if self.env else "")
        if self.entries:
            command += " --to-outputs " + ",".join(self.entries[key] for key in missing)
        raise MissingModelError(
            f"trained model files are missing:\n{listing}\nrun `{command}` in the project "
            "first (a plain `kedro run` makes every variant)"
        )


def load_torch_payload(path: str | Path, what: str) -> dict[str, Any]:
    """A model artefact dict from a ``torch.save`` file, loaded without running code."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MissingModelError(f"{what} {path} does not exist") from None
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"{path}: not a readable {what} ({error})") from error
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: a {what} must hold a dict, got {type(payload).__name__}")
    return payload


def load_calibration(path: str | Path) -> dict[str, Any]:
    """The calibration JSON written by the ``zsl_training`` pipeline (key ``gamma``)."""
    path = Path(path)
    try:
        calibration = json.loads(path.read_text())
    except FileNotFoundError:
        raise MissingModelError(f"calibration file {path} does not exist") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    return calibration


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


# ---------------------------------------------------------------------------------------------
# candidate labels


def split_labels(values: str | Iterable[str]) -> list[str]:
    """Candidate names from comma-separated strings (one string or several); blank pieces
    (a trailing comma) are dropped."""
    pieces = [values] if isinstance(values, str) else list(values)
    return [part.strip() for piece in pieces for part in str(piece).split(",") if part.strip()]


def read_labels_file(path: str | Path) -> list[str]:
    """One candidate name per line; blank lines and ``#`` comments are ignored (commas are
    part of a name here)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ValueError(f"labels file {path}: {error.strerror or error}") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


#: How each entry point asks for candidate names, for the error that finds none.
CLI_LABELS = '--labels "wave, kick a ball"'
REQUEST_LABELS = """'labels': ["wave", "kick a ball"] or 'labels': "wave, kick a ball\""""


def check_labels(labels: Iterable[str], example: str = CLI_LABELS) -> list[str]:
    """Stripped candidate names, in order; ``example`` shows, in the words of the entry point
    the names came through, how to give them.

    Raises:
        ValueError: no names, a name with no words, or two names that are the same action
            after :func:`normalise_label` (both named).
    """
    cleaned = [str(label).strip() for label in labels]
    cleaned = [label for label in cleaned if label]
    if not cleaned:
        raise ValueError(f"no candidate action names: give at least one, e.g. {example}")
    first_of: dict[str, str] = {}
    for label in cleaned:
        try:
            key = normalise_label(label)
        except ValueError:
            key = ""
        if not key:
            raise ValueError(f"candidate action name {label!r} has no words to embed")
        if key in first_of:
            raise ValueError(
                f"duplicate candidate action names {first_of[key]!r} and {label!r} (both read "
                f"as {key!r}); give each action once"
            )
        first_of[key] = label
    return cleaned


# ---------------------------------------------------------------------------------------------
# recordings


@dataclass(frozen=True)
class Recording:
    """One skeleton sequence to predict: ``data`` is float32 (T, M, V, C)."""

    name: str
    data: np.ndarray


def skipped_frame(rows: Sequence[tuple[str, str]] = ()) -> pd.DataFrame:
    """A table of skipped recordings (:data:`SKIPPED_COLUMNS`) from (recording, reason) pairs."""
    frame = pd.DataFrame(list(rows), columns=list(SKIPPED_COLUMNS))
    return frame.astype({"recording": "string", "reason": "string"})


def adapted_frame(rows: Sequence[tuple[str, str]] = ()) -> pd.DataFrame:
    """A table of adapted recordings (:data:`ADAPTED_COLUMNS`) from (recording, layout) pairs."""
    frame = pd.DataFrame(list(rows), columns=list(ADAPTED_COLUMNS))
    return frame.astype({"recording": "string", "layout": "string"})


#: What a folder given to :func:`read_recordings` is searched for: every format a file given on
#: its own is read as (single recordings (T, M, V, C) and ST-GCN arrays alike are ``.npy``).
FOLDER_PATTERNS = ("*.skeleton", "*_skeleton3D.txt", "*.npy")


def _expand(path: Path) -> list[Path]:
    """A folder becomes the recordings directly inside it (:data:`FOLDER_PATTERNS`), sorted."""
    if not path.is_dir():
        return [path]
    found = {file for pattern in FOLDER_PATTERNS for file in path.glob(pattern) if file.is_file()}
    return sorted(found)


def _nothing_in(folder: Path) -> str:
    """Why a folder yielded no recording: the patterns looked for, and where else to look."""
    patterns = ", ".join(FOLDER_PATTERNS)
    reason = f"folder holds no recording: looked for {patterns} directly inside it"
    if any(child.is_dir() for child in folder.iterdir()):
        reason += " (sub-folders are not searched: give them as arguments)"
    return reason


def _stgcn_array_recordings(path: Path, array: np.ndarray) -> list[Recording]:
    """ST-GCN arrays ``(N, C, T, V, M)``: every sample, unpadded like the ingestion does it."""
    label_path = path.with_name(path.name.removesuffix("_data.npy") + "_label.pkl")
    names: list[str] | None = None
    if path.name.endswith("_data.npy") and label_path.is_file():
        from pose_zsl.skeleton.stgcn_arrays import read_labels

        names = read_labels(label_path)[0]
        if len(names) != array.shape[0]:
            raise SkeletonFormatError(
                label_path, None, f"{len(names)} labels for {array.shape[0]} samples in {path}"
            )
    recordings = []
    for index in range(array.shape[0]):
        frames = np.asarray(array[index], dtype=np.float32).transpose(1, 3, 2, 0)
        filled = np.flatnonzero(frames.reshape(frames.shape[0], -1).any(axis=1))
        length = int(filled[-1]) + 1 if filled.size else 0
        tag = names[index] if names is not None else str(index)
        recordings.append(Recording(f"{path}[{tag}]", np.ascontiguousarray(frames[:length])))
    return recordings


def _read_one(path: Path, max_bodies: int, denoise: bool) -> list[Recording]:
    from pose_zsl.skeleton import msr, ntu

    name = path.name
    if name.endswith(".skeleton"):
        return [Recording(str(path), ntu.load_sample(path, max_bodies=max_bodies, denoise=denoise))]
    if name.endswith(".txt"):
        return [Recording(str(path), msr.load_sample(path))]
    if name.endswith(".npy"):
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as error:
            raise SkeletonFormatError(path, None, f"not a numeric .npy array: {error}") from None
        if array.ndim == 5:
            return _stgcn_array_recordings(path, array)
        if array.ndim in (3, 4):
            return [Recording(str(path), np.array(array, dtype=np.float32))]
        raise SkeletonFormatError(
            path,
            None,
            f"array of shape {array.shape}: expected one recording (T, M, V, C) or "
            "ST-GCN arrays (N, C, T, V, M)",
        )
    raise SkeletonFormatError(
        path,
        None,
        "unsupported recording format: expected an NTU .skeleton file, an MSR Action3D "
        "*_skeleton3D.txt file, a .npy array or a folder of those",
    )


def read_recordings(
    paths: Iterable[str | Path], *, max_bodies: int = READ_MAX_BODIES, denoise: bool = True
) -> tuple[list[Recording], pd.DataFrame]:
    """Read recordings in any supported format; folders are expanded.

    NTU files get the ingestion's body selection (``denoise``, ``max_bodies``), so a recording
    is preprocessed exactly like the training data. Returns the recordings and a table of the
    paths that could not be read (columns ``recording``, ``reason``); reading never stops at a
    bad file.
    """
    recordings: list[Recording] = []
    skipped: list[tuple[str, str]] = []
    for raw in paths:
        given = Path(raw)
        if not given.exists():
            skipped.append((str(raw), "no such file or folder"))
            continue
        files = _expand(given)
        if not files:
            skipped.append((str(raw), _nothing_in(given)))
        for path in files:
            try:
                recordings.extend(_read_one(path, max_bodies, denoise))
            except SkeletonFormatError as error:
                skipped.append((str(path), error.reason if error.line is None else str(error)))
            except OSError as error:
                skipped.append((str(path), f"cannot read: {error.strerror or error}"))
            except (ValueError, EOFError) as error:  # a .npy file numpy cannot use
                skipped.append((str(path), f"not a usable array: {error or type(error).__name__}"))
    for name, reason in skipped:
        logger.warning("skipped recording %s: %s", name, reason)
    return recordings, skipped_frame(skipped)


# ---------------------------------------------------------------------------------------------
# label table and embedder


def _texts_of(value: Any) -> list[str]:
    if value is None or isinstance(value, str):
        return [value] if value else []
    return [str(text) for text in value]


def infer_templates(table: pd.DataFrame) -> list[str]:
    """The text templates the label table was built with (e.g. ``"a person {name}"``).

    A template is recognised when replacing the first class's readable phrase (``{name}``) or
    official name (``{official}``) in one of its texts gives a pattern that reproduces a text of
    every class. Custom per-class descriptions fit no pattern and are left out. Falls back to
    ``["{name}"]`` when the table has no templated text.
    """
    rows = list(zip(table["action_name"].astype(str), table["texts"].map(_texts_of), strict=True))
    official, texts = rows[0]
    phrase = readable_phrase(official)
    found: list[str] = []
    for text in texts:
        if "{" in text or "}" in text:
            continue
        for needle, slot in ((phrase, "{name}"), (official, "{official}")):
            if needle not in text:
                continue
            template = text.replace(needle, slot)
            if template in found:
                continue
            if all(
                template.format(name=readable_phrase(name), official=name) in class_texts_
                for name, class_texts_ in rows
            ):
                found.append(template)
    if not found:
        logger.warning(
            "the label table's texts follow no common template; new candidate names are "
            "embedded as their readable phrase alone"
        )
        return ["{name}"]
    return found


def text_model_path(table: pd.DataFrame, base_dir: str | Path | None = None) -> Path | None:
    """The local file or folder holding the text model of a label-embedding table (a Sent2Vec
    ``.bin``, a sentence-transformers folder), or None when the model needs no file of the
    project (random vectors, a sentence-transformers model from an installed package).

    A relative path is taken from ``base_dir``; the result may not exist.
    """
    name = str(table["embedder"].iloc[0])
    model = str(table["embedder_model"].iloc[0])
    if name == "sent2vec":
        path = Path(model.removesuffix(_SENT2VEC_TOKENISED))
    elif name == "sentence_transformers" and model not in DEFAULT_SENTENCE_TRANSFORMER_NAMES:
        path = Path(model).expanduser()  # as the embedder resolves it
    else:
        return None
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if name == "sentence_transformers" and not path.is_dir():
        return None  # a name in the Hugging Face cache, resolved by the library
    return path


def embedder_from_table(
    table: pd.DataFrame,
    base_dir: str | Path | None = None,
    text_model: str | Path | None = None,
) -> Embedder:
    """Rebuild the embedder recorded in a label-embedding table (``embedder``,
    ``embedder_model``, ``dim`` columns). A relative Sent2Vec path is taken from ``base_dir``;
    ``text_model`` replaces the recorded model file or folder (see :func:`text_model_path`),
    as when the model travels with an MLflow model.

    Raises:
        ValueError: an unknown embedder or model description, or a dimension mismatch.
    """
    name = str(table["embedder"].iloc[0])
    model = str(table["embedder_model"].iloc[0])
    dim = int(table["dim"].iloc[0])
    if name == "random":
        match = _RANDOM_MODEL.fullmatch(model)
        if match is None:
            raise ValueError(f"label table: random embedder model {model!r} is not understood")
        embedder = make_embedder("random", seed=int(match[1]), like=match[2], dim=dim)
    elif name == "sentence_transformers":
        embedder = make_embedder(name, model=str(text_model) if text_model else model)
    elif name == "sent2vec":
        tokenize = model.endswith(_SENT2VEC_TOKENISED)
        model_path = Path(text_model) if text_model else text_model_path(table, base_dir)
        embedder = make_embedder(name, model_path=str(model_path), tokenize=tokenize)
    else:
        raise ValueError(f"label table: unknown embedder {name!r}")
    if embedder.dim != dim:
        raise ModelMismatchError(
            f"embedder {name} ({model}) gives {embedder.dim}-D vectors, the label table "
            f"holds {dim}-D ones"
        )
    return embedder


@dataclass(frozen=True)
class Candidates:
    """Candidate names with their label vectors and whether each is a training class."""

    labels: list[str]
    vectors: np.ndarray  # (K, E) float32
    seen: np.ndarray  # (K,) bool: a training (seen) class of the model
    matched_class: list[str | None]  # the label table's official name the candidate matched


# ---------------------------------------------------------------------------------------------
# the predictor


@dataclass
class Ranking:
    """Top-k predictions (columns :data:`PREDICTION_COLUMNS`, one row per recording and rank),
    the recordings that could not be predicted (columns :data:`SKIPPED_COLUMNS`) and those
    that were read through a layout adapter (columns :data:`ADAPTED_COLUMNS`)."""

    predictions: pd.DataFrame
    skipped: pd.DataFrame = field(default_factory=lambda: skipped_frame([]))
    adapted: pd.DataFrame = field(default_factory=lambda: adapted_frame([]))

    def combined(self) -> pd.DataFrame:
        """Predictions plus one row per skipped recording (rank 0, no label, ``error`` set)."""
        predictions = self.predictions.assign(
            error=pd.Series(pd.NA, index=self.predictions.index, dtype="string")
        )
        if self.skipped.empty:
            return predictions.reset_index(drop=True)
        failures = pd.DataFrame(
            {
                "recording": self.skipped["recording"].astype("string"),
                "rank": np.zeros(len(self.skipped), dtype=np.int64),
                "label": pd.Series(pd.NA, index=self.skipped.index, dtype="string"),
                "score": np.nan,
                "share": np.nan,
                "raw_score": np.nan,
                "seen": False,
                "matched_class": pd.Series(pd.NA, index=self.skipped.index, dtype="string"),
                "error": self.skipped["reason"].astype("string"),
            }
        )
        return pd.concat([predictions, failures], ignore_index=True)


def candidate_shares(scores: np.ndarray) -> np.ndarray:
    """Each candidate's share of its recording (rows sum to 1): the softmax of a row's scores
    measured in standard deviations of that row.

    Heads score on different scales (Relation Net probabilities of 1e-11 on recordings unlike
    the training data, cosines, logits); the share reads the same for all and keeps the
    scores' order. It is a weight among the candidates given, not the probability that the
    recording shows one of them: it changes with the candidate list.
    """
    centred = scores - scores.mean(axis=1, keepdims=True)
    spread = scores.std(axis=1, keepdims=True)
    weights = np.exp(centred / np.where(spread > 0, spread, 1.0))
    return weights / weights.sum(axis=1, keepdims=True)


def empty_predictions() -> pd.DataFrame:
    """A prediction table without rows (columns and dtypes of :meth:`ZeroShotPredictor.rank`)."""
    return pd.DataFrame(
        {
            "recording": pd.Series(dtype="string"),
            "rank": pd.Series(dtype="int64"),
            "label": pd.Series(dtype="string"),
            "score": pd.Series(dtype="float64"),
            "share": pd.Series(dtype="float64"),
            "raw_score": pd.Series(dtype="float64"),
            "seen": pd.Series(dtype="bool"),
            "matched_class": pd.Series(dtype="string"),
        }
    )


class ZeroShotPredictor:
    """One trained variant, loaded once, ranking free-text action names for recordings.

    Args:
        stgcn_artifact: the ST-GCN artefact dict (catalog ``{split}.stgcn_model``).
        head_artifact: the zero-shot head artefact dict (``{split}.{head}.{embedding}.zsl_model``).
        label_embeddings: the label-embedding table the head was trained with.
        calibration: the calibration dict (key ``gamma``); ``None`` ranks without calibrated
            stacking (a warning is logged when seen classes are among the candidates).
        device: torch device for the ST-GCN and the head (``"cpu"``, ``"cuda"``, ``"auto"``).
        batch_size: recordings per ST-GCN forward pass.
        base_dir: where relative paths in the label table (a Sent2Vec model) are resolved.
        text_model: the text model's file or folder, replacing the one the table records
            (see :func:`text_model_path`).
        embedder: an embedder to use instead of rebuilding the table's (it must reproduce the
            table's vectors).
        sources: names of the artefacts for error messages (``stgcn``, ``head``, ...).
        adapt_layout: ``"auto"`` (default) reads a recording of another layout as the model's
            when an adapter exists (:mod:`pose_zsl.skeleton.adapt`), ``"off"`` skips it; the
            ``adapt_layout`` argument of :meth:`features` / :meth:`rank` overrides it per call.

    Raises:
        ModelMismatchError: the files do not belong together (other classes, embedder or
            dimensions).
        ValueError: an artefact that is not what it claims to be.
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
        from pose_zsl.models.heads import head_from_artifact
        from pose_zsl.training.device import resolve_device
        from pose_zsl.training.stgcn_trainer import model_from_artifact

        names = {
            "stgcn": "ST-GCN artefact",
            "head": "zero-shot head artefact",
            "label_embeddings": "label-embedding table",
            "calibration": "calibration",
            **dict(sources or {}),
        }
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.adapt_layout = parse_adapt_layout(adapt_layout)
        self.device = resolve_device(device)
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.text_model = Path(text_model) if text_model is not None else None
        self.stgcn, self.stgcn_meta = model_from_artifact(
            dict(stgcn_artifact), source=names["stgcn"], map_location=self.device
        )
        self.head = head_from_artifact(dict(head_artifact), source=names["head"])
        self.head_meta = dict(head_artifact.get("meta") or {})
        self.layout = str(self.stgcn_meta.get("layout") or self.stgcn.layout.name)
        self.num_joints = int(self.stgcn.layout.num_joints)
        self.in_channels = int(self.stgcn.in_channels)
        self.window = int(self.stgcn_meta["window"])
        self.window_mode = str(self.stgcn_meta["window_mode"])
        self.max_bodies = int(self.stgcn_meta["max_bodies"])
        self.seen_class_ids = sorted(int(c) for c in self.stgcn_meta["class_ids"])
        self._check_head(names)
        self._table = self._check_table(label_embeddings, names)
        self._vectors = embedding_matrix(self._table)
        self._class_index = self._label_index()
        self.gamma = self._gamma(calibration, names)
        self._embedder = embedder
        self._templates: list[str] | None = None
        self.embedder_name = str(self._table["embedder"].iloc[0])

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_files(cls, files: ModelFiles, **options: Any) -> ZeroShotPredictor:
        """Load the four files of a variant (see :meth:`ModelFiles.for_variant`)."""
        files.require()
        try:
            table = pd.read_parquet(files.label_embeddings)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"{files.label_embeddings}: not a readable parquet table ({error})"
            ) from error
        return cls(
            load_torch_payload(files.stgcn, "ST-GCN artefact"),
            load_torch_payload(files.head, "zero-shot head artefact"),
            table,
            load_calibration(files.calibration),
            sources={key: str(path) for key, path in files.as_dict().items()},
            **options,
        )

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

    def _check_head(self, names: Mapping[str, str]) -> None:
        head_seen = self.head.seen_class_ids
        if head_seen is None:
            head_seen = self.head_meta.get("seen_class_ids")
        if head_seen is None:
            raise ValueError(f"{names['head']}: the head does not record its seen classes")
        head_seen = sorted(int(c) for c in head_seen)
        if head_seen != self.seen_class_ids:
            raise ModelMismatchError(
                f"{names['head']} was trained on classes {head_seen} but {names['stgcn']} on "
                f"{self.seen_class_ids}: they come from different splits"
            )
        feature_dim = int(getattr(self.stgcn, "feature_dim", self.head.feature_dim))
        if feature_dim != self.head.feature_dim:
            raise ModelMismatchError(
                f"{names['head']} expects {self.head.feature_dim}-D features but "
                f"{names['stgcn']} gives {feature_dim}-D ones"
            )

    def _check_table(self, table: pd.DataFrame, names: Mapping[str, str]) -> pd.DataFrame:
        source = names["label_embeddings"]
        required = {
            "action_id",
            "action_name",
            "texts",
            "embedder",
            "embedder_model",
            "dim",
            "vector",
        }
        missing = sorted(required - set(table.columns))
        if missing:
            raise ValueError(f"{source}: the label-embedding table lacks columns {missing}")
        if table.empty:
            raise ValueError(f"{source}: the label-embedding table is empty")
        embedders = table["embedder"].astype(str).unique()
        if len(embedders) != 1:
            raise ValueError(f"{source}: mixes embedders {sorted(embedders)}")
        head_embedder = self.head_meta.get("embedder")
        if head_embedder is not None and str(head_embedder) != embedders[0]:
            raise ModelMismatchError(
                f"{names['head']} was trained with {head_embedder!r} label embeddings, but "
                f"{source} holds {embedders[0]!r} ones"
            )
        dim = int(table["dim"].iloc[0])
        if dim != self.head.embedding_dim:
            raise ModelMismatchError(
                f"{names['head']} expects {self.head.embedding_dim}-D label embeddings, "
                f"{source} holds {dim}-D ones"
            )
        absent = sorted(set(self.seen_class_ids) - set(table["action_id"].astype(int)))
        if absent:
            raise ModelMismatchError(
                f"{source} has no rows for the model's training classes {absent}"
            )
        return table.sort_values("action_id").reset_index(drop=True)

    def _gamma(
        self, calibration: Mapping[str, Any] | None, names: Mapping[str, str]
    ) -> float | None:
        if calibration is None:
            return None
        if "gamma" not in calibration:
            raise ValueError(f"{names['calibration']}: no 'gamma' key")
        gamma = float(calibration["gamma"])
        if not np.isfinite(gamma):
            raise ValueError(f"{names['calibration']}: gamma is {gamma}")
        return gamma

    def _label_index(self) -> dict[str, int]:
        """Normalised official name, readable phrase and embedded texts -> table row."""
        index: dict[str, int] = {}
        for row, (name, texts) in enumerate(
            zip(
                self._table["action_name"].astype(str),
                self._table["texts"].map(_texts_of),
                strict=True,
            )
        ):
            for text in (name, *texts):
                try:
                    key = normalise_label(text)
                except ValueError:
                    continue
                index.setdefault(key, row)
        return index

    # -- properties ---------------------------------------------------------------------------

    @property
    def seen_class_names(self) -> list[str]:
        """Official names of the classes the models were trained on."""
        ids = self._table["action_id"].astype(int)
        return [str(n) for n in self._table.loc[ids.isin(self.seen_class_ids), "action_name"]]

    def describe(self) -> dict[str, Any]:
        """What was loaded, for logs and reports (the seen classes as a count: their names are
        :attr:`seen_class_names`)."""
        return {
            "split": self.head_meta.get("split"),
            "head": self.head.kind,
            "embedder": self.embedder_name,
            "layout": self.layout,
            "window": self.window,
            "window_mode": self.window_mode,
            "max_bodies": self.max_bodies,
            "seen_classes": len(self.seen_class_names),
            "gamma": self.gamma,
        }

    # -- candidates ---------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        """The table's embedder, rebuilt on first use and checked against a stored vector."""
        if self._embedder is None:
            self._embedder = embedder_from_table(self._table, self.base_dir, self.text_model)
            self._verify_embedder(self._embedder)
        return self._embedder

    def _verify_embedder(self, embedder: Embedder) -> None:
        texts = _texts_of(self._table["texts"].iloc[0])
        vector = embed_labels([texts], embedder)[0]
        stored = self._vectors[0] / np.linalg.norm(self._vectors[0])
        distance = 1.0 - float(vector @ stored)
        if distance > EMBEDDER_CHECK_TOLERANCE:
            raise ModelMismatchError(
                f"the embedder {embedder.name} ({embedder.model}) does not reproduce the label "
                f"table's vector of {self._table['action_name'].iloc[0]!r} (cosine distance "
                f"{distance:.3g}): it is not the embedder the model was trained with"
            )

    def candidates(self, labels: Iterable[str]) -> Candidates:
        """Vectors for the candidate names (see the module docstring for how)."""
        names = check_labels(labels)
        rows = [self._class_index.get(normalise_label(name)) for name in names]
        vectors = np.empty((len(names), self._vectors.shape[1]), dtype=np.float32)
        new = [i for i, row in enumerate(rows) if row is None]
        if new:
            if self._templates is None:
                self._templates = infer_templates(self._table)
            texts = class_texts([names[i] for i in new], templates=self._templates)
            vectors[new] = embed_labels(texts, self.embedder)
        known = [i for i, row in enumerate(rows) if row is not None]
        if known:
            vectors[known] = self._vectors[[rows[i] for i in known]]
        ids = self._table["action_id"].astype(int).to_numpy()
        seen = np.array([row is not None and ids[row] in self.seen_class_ids for row in rows])
        official = [
            None if row is None else str(self._table["action_name"].iloc[row]) for row in rows
        ]
        return Candidates(names, vectors, seen, official)

    # -- recordings ---------------------------------------------------------------------------

    def read(
        self, paths: Iterable[str | Path], denoise: bool = True
    ) -> tuple[list[Recording], pd.DataFrame]:
        """:func:`read_recordings` with the body count the model needs."""
        return read_recordings(
            paths, max_bodies=max(READ_MAX_BODIES, self.max_bodies), denoise=denoise
        )

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

    def _prepare(
        self, recordings: Sequence[Recording], adapt_layout: str | None
    ) -> tuple[list[Recording], list[tuple[str, str]], list[tuple[str, str]]]:
        """The recordings the model can take (as float32 (T, M, V, C) in its layout), the
        skipped ones with their reason and the adapted ones with their own layout."""
        mode = self.adapt_layout if adapt_layout is None else parse_adapt_layout(adapt_layout)
        usable: list[Recording] = []
        skipped: list[tuple[str, str]] = []
        adapted: list[tuple[str, str]] = []
        for recording in recordings:
            data = np.asarray(recording.data, dtype=np.float32)
            if data.ndim == 3:  # (T, V, C): one body
                data = data[:, None]
            data, source, problem = self._fit_layout(data, mode)
            if problem is None:
                problem = self._problem(data)
            if problem is not None:
                logger.warning("skipped recording %s: %s", recording.name, problem)
                skipped.append((recording.name, problem))
                continue
            usable.append(Recording(recording.name, data))
            if source is not None:
                adapted.append((recording.name, source))
        self._log_adapted(adapted)
        return usable, skipped, adapted

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

    def features(
        self, recordings: Sequence[Recording], adapt_layout: str | None = None
    ) -> tuple[np.ndarray, list[str], pd.DataFrame]:
        """``(N, D)`` features of the usable recordings, their names, and the skipped ones.

        ``adapt_layout`` (``"auto"`` / ``"off"``; default: the predictor's setting) decides
        whether recordings of another layout are adapted to the model's (see the class doc).
        """
        usable, skipped, _ = self._prepare(recordings, adapt_layout)
        matrix = self._features_of(usable)
        return matrix, [r.name for r in usable], skipped_frame(skipped)

    def _features_of(self, usable: Sequence[Recording]) -> np.ndarray:
        """``(N, D)`` ST-GCN features of recordings already checked by :meth:`_prepare`."""
        from pose_zsl.training.batching import WindowCollate
        from pose_zsl.training.features import features_and_logits

        collate = WindowCollate(
            self.window,
            self.max_bodies,
            self.window_mode,
            train=False,
            normalise=str(self.stgcn_meta.get("normalise", "none")),
            layout=self.layout,
        )
        blocks: list[np.ndarray] = []
        with torch.no_grad():
            for start in range(0, len(usable), self.batch_size):
                chunk = usable[start : start + self.batch_size]
                batch = collate([(r.data, 0, i, 0) for i, r in enumerate(chunk)])
                features, _ = features_and_logits(self.stgcn, batch.x.to(self.device))
                blocks.append(features.float().cpu().numpy())
        dim = self.head.feature_dim
        return np.concatenate(blocks) if blocks else np.zeros((0, dim), np.float32)

    # -- ranking ------------------------------------------------------------------------------

    def calibration_constant(self, calibration: Any = DEFAULT_CALIBRATION) -> float | None:
        """The constant subtracted from training classes' scores for a ``calibration`` choice
        (see :func:`parse_calibration`); None: no subtraction."""
        choice = parse_calibration(calibration)
        if choice == CALIBRATION_AUTO:
            return self.gamma
        if choice == CALIBRATION_OFF:
            return None
        return float(choice)

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
        is before that subtraction; ``share`` is :func:`candidate_shares` of the scores.
        ``adapt_layout`` is :meth:`features`'; the recordings it adapted are in the ranking's
        ``adapted`` table.
        """
        if int(top_k) < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if adapt_layout is not None:
            adapt_layout = parse_adapt_layout(adapt_layout)
        choice = parse_calibration(calibration)
        gamma = self.calibration_constant(choice)
        wrapped = _as_recordings(recordings, names)
        candidates = self.candidates(labels)
        if candidates.seen.any() and gamma is None and choice == CALIBRATION_AUTO:
            logger.warning(
                "seen classes are among the candidates but no calibration constant is loaded: "
                "scores favour seen classes"
            )
        usable, skipped_rows, adapted_rows = self._prepare(wrapped, adapt_layout)
        skipped, adapted = skipped_frame(skipped_rows), adapted_frame(adapted_rows)
        if not usable:
            return Ranking(empty_predictions(), skipped, adapted)
        features = self._features_of(usable)
        kept = [r.name for r in usable]
        from pose_zsl.models.heads import score
        from pose_zsl.zsl.metrics import calibrated_stacking

        raw = score(self.head, features, candidates.vectors, device=self.device).astype(np.float64)
        seen_columns = np.flatnonzero(candidates.seen)
        calibrated = raw.copy()
        if seen_columns.size and gamma is not None:
            columns_ids = np.arange(len(candidates.labels))
            calibrated = calibrated_stacking(raw, columns_ids, seen_columns, gamma)
        k = min(int(top_k), len(candidates.labels))
        order = np.argsort(-calibrated, axis=1, kind="stable")[:, :k]
        rows = np.repeat(np.arange(len(kept)), k)
        columns = order.ravel()
        predictions = pd.DataFrame(
            {
                "recording": pd.Series(
                    np.repeat(np.asarray(kept, dtype=object), k), dtype="string"
                ),
                "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), len(kept)),
                "label": pd.Series([candidates.labels[c] for c in columns], dtype="string"),
                "score": calibrated[rows, columns],
                "share": candidate_shares(calibrated)[rows, columns],
                "raw_score": raw[rows, columns],
                "seen": candidates.seen[columns],
                "matched_class": pd.Series(
                    [candidates.matched_class[c] for c in columns], dtype="string"
                ),
            }
        )
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


def _content_problem(data: np.ndarray) -> str | None:
    """Why a (T, M, V, C) recording has nothing to window (the training's screening reasons)."""
    if data.shape[0] == 0 or data.shape[1] == 0:
        return "no frames"
    if not np.isfinite(data).all():
        return "non-finite coordinates"
    if not data.any():
        return "no valid frames (all coordinates are zero)"
    return None


def _as_recordings(
    recordings: Sequence[Recording | np.ndarray], names: Sequence[str] | None
) -> list[Recording]:
    if names is not None and len(names) != len(recordings):
        raise ValueError(f"{len(names)} names for {len(recordings)} recordings")
    wrapped = []
    for i, item in enumerate(recordings):
        if isinstance(item, Recording):
            wrapped.append(item)
        else:
            name = names[i] if names is not None else f"recording_{i}"
            wrapped.append(Recording(str(name), np.asarray(item)))
    return wrapped


# ---------------------------------------------------------------------------------------------
# request tables (the inference pipeline's and the MLflow model's input)


def requests_frame(
    recordings: Sequence[Recording | np.ndarray],
    labels: Iterable[str],
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """A request table (:data:`REQUEST_COLUMNS`): one row per recording, each with the same
    candidate names. ``skeleton`` is flattened (float32) with its shape beside it, which keeps
    MLflow's schema check fast for long recordings."""
    wrapped = _as_recordings(recordings, names)
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

    ``labels`` may be a list of names or one comma-separated string per row; ``calibration``
    and ``adapt_layout`` are :meth:`ZeroShotPredictor.rank`'s.

    A row whose recording cannot be read, or whose candidate list is empty or has duplicates,
    becomes a skipped row with the reason; the other rows are ranked.

    Raises:
        ValueError: the table lacks ``skeleton``, ``shape`` or ``labels``.
    """
    calibration = parse_calibration(calibration)
    if adapt_layout is not None:
        adapt_layout = parse_adapt_layout(adapt_layout)
    missing = sorted({"skeleton", "shape", "labels"} - set(requests.columns))
    if missing:
        raise ValueError(f"request table lacks columns {missing}; expected {list(REQUEST_COLUMNS)}")
    groups: dict[tuple[str, ...], list[Recording]] = {}
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
            candidates = tuple(check_labels(labels, REQUEST_LABELS))
        except ValueError as error:  # one bad row must not fail the others
            skipped.append((name, str(error)))
            continue
        groups.setdefault(candidates, []).append(recording)
    predictions, skipped_frames, adapted_frames = [], [skipped_frame(skipped)], [adapted_frame()]
    for labels, recordings in groups.items():
        ranking = predictor.rank(
            recordings, labels, top_k, calibration=calibration, adapt_layout=adapt_layout
        )
        predictions.append(ranking.predictions)
        skipped_frames.append(ranking.skipped)
        adapted_frames.append(ranking.adapted)
    table = pd.concat(predictions, ignore_index=True) if predictions else empty_predictions()
    return Ranking(
        table,
        pd.concat(skipped_frames, ignore_index=True),
        pd.concat(adapted_frames, ignore_index=True),
    )
