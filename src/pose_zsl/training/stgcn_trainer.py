"""Train ST-GCN on the seen classes of a protocol's training split, with checkpoints and resume.

Zero-shot integrity: only samples of *seen* classes from the protocol's ``"train"`` split reach
the training and validation loaders. Model selection (best epoch) uses a stratified, seeded
hold-out of that same seen-class training split, never test samples and never unseen classes.
:func:`assert_seen_only` re-checks the exact sample ids that the loaders will read against a
snapshot of the input table, so a bug in the row selection raises instead of leaking.

Every epoch ends with an atomic checkpoint (``last.pt`` in the checkpoint directory: model,
optimizer, schedule, history, best weights, RNG state, config). Rerunning with the same directory
and a compatible config continues after the last completed epoch; on CPU the result is bitwise
the same as an uninterrupted run, because all data randomness is derived from (seed, epoch, item)
and the torch RNG state is restored.

The same function runs as every rank of a ``torchrun`` launch (see
:mod:`pose_zsl.training.distributed`): ``batch_size`` is then the global batch, split evenly over
the ranks, each rank trains on its shard of every epoch under DistributedDataParallel (with
synchronised batch norm on multi-GPU runs), validation counts are summed over the ranks so every
rank selects the same best epoch, and only rank 0 writes the checkpoint (which every rank
resumes from: rank 0 reads it and sends it to the others).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from pose_zsl.skeleton.normalise import NORMALISATIONS
from pose_zsl.skeleton.store import SequenceStore
from pose_zsl.training.batching import (
    WINDOW_MODES,
    EpochSampler,
    SkeletonDataset,
    WindowCollate,
    make_loader,
    select_sequences,
)
from pose_zsl.training.device import (
    autocast,
    configure_backend,
    resolve_device,
    resolve_precision,
)
from pose_zsl.training.distributed import (
    DEFAULT_TIMEOUT_S,
    DistContext,
    DistributedError,
    average_buffers,
    convert_sync_batchnorm,
    launch_world_size,
    looks_like_peer_failure,
    rank_logger,
    rank_seed,
    setup_distributed,
    wrap_ddp,
)

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"
CHECKPOINT_FORMAT = "pose_zsl.stgcn_checkpoint"
ARTIFACT_FORMAT = "pose_zsl.stgcn_artifact"
FORMAT_VERSION = 1
PROTOCOLS = ("xsub", "xview", "xset", "xdata")
WEIGHT_INITS = ("pytorch", "reference")
#: How the validation samples are held out of the seen classes' training samples: a share of
#: each class's samples, or whole performers (so validation measures cross-subject accuracy).
VAL_GROUPINGS = ("sample", "performer")
HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_acc", "lr", "samples_per_s", "seconds")

#: Config fields that only steer how a run executes; a checkpoint stays resumable across them.
#: ``epochs`` is among them so that a finished run can be extended.
RUN_ONLY_FIELDS = frozenset(
    {
        "epochs",
        "num_workers",
        "cpu_threads",
        "checkpoint_dir",
        "device",
        "compile",
        "eval_batch_size",
        "sync_batchnorm",
        "distributed_timeout_s",
    }
)


class CheckpointError(ValueError):
    """A checkpoint or model artefact that cannot be used; the message names the file."""


class IncompatibleCheckpointError(CheckpointError):
    """A readable checkpoint from a different run (other config, data or class list)."""


@dataclass
class TrainConfig:
    """ST-GCN training settings.

    The defaults are the paper's (SGD lr 0.01, momentum 0.9, wd 1e-4, batch 48, 80 epochs, step
    decay, 300-frame windows, 2 bodies) except ``window_mode``: "resize" fits a whole clip into
    any window, which short CPU windows need; ``TrainConfig.paper()`` uses the reference's
    zero padding ("pad").

    ``lr_milestones`` are epochs (0-based) at which the learning rate is multiplied by
    ``lr_gamma``. ``width`` scales every layer's channels (1.0 = the original network; the
    feature dimension is 256 * width). ``reference_exact_graph`` selects the original's
    truncated-hop spatial partition (True) or true BFS distances (see ``pose_zsl.models.graph``).
    ``val_fraction`` of each seen class's training samples is held out for model selection;
    ``val_by: performer`` holds out whole performers instead (about ``val_fraction`` of the
    samples), the honest choice for a cross-subject protocol: same-performer validation
    samples overestimate accuracy on new people.
    ``cpu_threads`` caps torch's intra-op threads during the run (None: torch's default); on a
    CPU shared with other jobs one thread can be many times faster than oversubscribed ones.

    Distributed runs (``torchrun``): ``batch_size`` is the *global* batch, divided evenly over
    the ranks (it must be a multiple of the number of processes), so the same settings train
    the same model on any number of GPUs; to use more GPUs at a larger batch, scale ``lr`` with
    it (linear rule). ``sync_batchnorm`` synchronises batch-norm statistics over the ranks
    (None: on for multi-GPU CUDA runs, off on CPU, where per-rank statistics are averaged at
    the end of each epoch instead). ``distributed_timeout_s`` bounds how long a rank waits for
    the others (rendezvous and every collective) before failing.
    """

    epochs: int = 80
    batch_size: int = 48
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    lr_milestones: tuple[int, ...] = (10, 50)
    lr_gamma: float = 0.1
    window: int = 300
    window_mode: str = "resize"
    max_bodies: int = 2
    augment: bool = False
    normalise: str = "none"
    protocol: str = "xsub"
    val_fraction: float = 0.1
    val_by: str = "sample"
    width: float = 1.0
    partition: str = "spatial"
    reference_exact_graph: bool = True
    edge_importance: bool = True
    dropout: float = 0.5
    weight_init: str = "pytorch"
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    channels_last: bool = False
    grad_clip: float | None = None
    num_workers: int = 0
    cpu_threads: int | None = None
    eval_batch_size: int | None = None
    sync_batchnorm: bool | None = None
    distributed_timeout_s: float = DEFAULT_TIMEOUT_S
    seed: int = 0
    checkpoint_dir: str | None = None

    def __post_init__(self) -> None:
        self._coerce_numbers()
        self.lr_milestones = tuple(int(m) for m in self.lr_milestones)
        problems = [message for bad, message in self._range_checks() if bad]
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))

    def _range_checks(self) -> list[tuple[bool, str]]:
        """(is the setting invalid, what to say about it) for every checked field."""
        return [
            (self.epochs < 1, f"epochs={self.epochs} (must be >= 1)"),
            (self.batch_size < 1, f"batch_size={self.batch_size} (must be >= 1)"),
            (self.lr <= 0, f"lr={self.lr} (must be > 0)"),
            (
                self.window < 1 or self.max_bodies < 1,
                f"window={self.window}, max_bodies={self.max_bodies} (must be >= 1)",
            ),
            (
                self.window_mode not in WINDOW_MODES,
                f"window_mode={self.window_mode!r} (one of {WINDOW_MODES})",
            ),
            (
                self.normalise not in NORMALISATIONS,
                f"normalise={self.normalise!r} (one of {NORMALISATIONS})",
            ),
            (self.protocol not in PROTOCOLS, f"protocol={self.protocol!r} (one of {PROTOCOLS})"),
            (self.val_by not in VAL_GROUPINGS, f"val_by={self.val_by!r} (one of {VAL_GROUPINGS})"),
            (
                not 0.0 <= self.val_fraction < 1.0,
                f"val_fraction={self.val_fraction} (must be in [0, 1))",
            ),
            (
                self.weight_init not in WEIGHT_INITS,
                f"weight_init={self.weight_init!r} (one of {WEIGHT_INITS})",
            ),
            (
                self.grad_clip is not None and self.grad_clip <= 0,
                f"grad_clip={self.grad_clip} (must be > 0 or None)",
            ),
            (
                self.cpu_threads is not None and self.cpu_threads < 1,
                f"cpu_threads={self.cpu_threads} (must be >= 1 or None)",
            ),
            (self.width <= 0, f"width={self.width} (must be > 0)"),
            (
                self.distributed_timeout_s <= 0,
                f"distributed_timeout_s={self.distributed_timeout_s} (must be > 0)",
            ),
        ]

    def _coerce_numbers(self) -> None:
        """Accept numbers written as strings (YAML reads ``1e-4`` without a dot as a string)."""
        casts = {"float": float, "int": int, "float | None": float, "int | None": int}
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            cast = casts.get(str(spec.type))
            if cast is None or value is None or isinstance(value, bool):
                continue
            try:
                number = cast(value)
            except (TypeError, ValueError):
                raise ValueError(f"TrainConfig.{spec.name}={value!r} is not a number") from None
            if cast is int and isinstance(value, float) and number != value:
                raise ValueError(f"TrainConfig.{spec.name}={value!r} is not an integer")
            setattr(self, spec.name, number)

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> TrainConfig:
        """Build from a parameters mapping; an unknown key is an error naming it."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(
                f"unknown ST-GCN training parameters {unknown}; known: {sorted(known)}"
            )
        return cls(**params)

    @classmethod
    def paper(cls, **overrides: Any) -> TrainConfig:
        """The paper's settings: SGD lr 0.01, wd 1e-4, batch 48, 80 epochs with step decay,
        300-frame zero-padded windows, 2 bodies."""
        settings: dict[str, Any] = {"window_mode": "pad"}
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def small_cpu(cls, **overrides: Any) -> TrainConfig:
        """A reduced configuration for the synthetic data on 2 CPU cores: 1/8 width (32-D
        features), 32-frame resized windows, a higher learning rate, 12 epochs, one torch thread
        (two threads on a busy 2-core machine ran 5-10x slower). Measured on 342 training clips:
        30-50 samples/s on a shared CPU, about 110-150 s per training run."""
        settings: dict[str, Any] = {
            "epochs": 12,
            "batch_size": 16,
            "lr": 0.05,
            "lr_milestones": (9,),
            "window": 32,
            "window_mode": "resize",
            "width": 0.125,
            "dropout": 0.0,
            "val_fraction": 0.15,
            "cpu_threads": 1,
        }
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def small_real(cls, **overrides: Any) -> TrainConfig:
        """:meth:`small_cpu` for the small real Kinect v1 datasets (MSR Action3D, UTKinect and
        their pools): one body, view normalisation, augmentation, 1/4 width, 60 epochs (x0.1 at
        45), validation on held-out performers. Chosen on held-out performers of seen classes
        (``bench/select_real_settings.py``), never on unseen classes."""
        settings: dict[str, Any] = {
            "max_bodies": 1,
            "window": 32,
            "normalise": "view",
            "augment": True,
            "width": 0.25,
            "epochs": 60,
            "lr_milestones": (45,),
            "val_by": "performer",
        }
        settings.update(overrides)
        return cls.small_cpu(**settings)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists for tuples), loadable from a ``weights_only`` torch file."""
        values = dataclasses.asdict(self)
        values["lr_milestones"] = list(self.lr_milestones)
        return values

    def lr_at(self, epoch: int) -> float:
        """Step decay: ``lr * gamma ** (number of milestones <= epoch)``."""
        passed = sum(1 for milestone in self.lr_milestones if milestone <= epoch)
        return self.lr * self.lr_gamma**passed


#: Schedule presets, chosen by ``stgcn_training.preset``. A preset fixes every field except
#: :data:`PRESET_INDEPENDENT_FIELDS`: the schedule, the input windows, the architecture, the
#: validation hold-out and the CPU thread count of the machine profile it was made for.
TRAIN_PRESETS: dict[str, Callable[..., TrainConfig]] = {
    "paper": TrainConfig.paper,
    "synthetic": TrainConfig.small_cpu,
    "small_real": TrainConfig.small_real,
}

#: Fields no preset sets (where and how a run executes, which protocol it trains on): the base
#: parameters may give them for every environment without changing what a preset trains.
PRESET_INDEPENDENT_FIELDS = frozenset(
    {
        "protocol",
        "device",
        "precision",
        "compile",
        "channels_last",
        "num_workers",
        "eval_batch_size",
        "sync_batchnorm",
        "distributed_timeout_s",
        "seed",
        "checkpoint_dir",
    }
)

#: Keys of the ``stgcn_training`` parameters that are not TrainConfig fields.
PARAMETER_ONLY_KEYS = frozenset({"preset", "checkpoint_root"})


def train_config_from_params(params: Mapping[str, Any]) -> TrainConfig:
    """The effective TrainConfig of the ``stgcn_training`` parameters: the preset named by
    ``params["preset"]`` (:data:`TRAIN_PRESETS`) with every other key, a TrainConfig field,
    laid over it. ``checkpoint_root`` is the pipeline's folder, not part of the config."""
    if "preset" not in params:
        raise ValueError(
            f"stgcn_training.preset is missing; set it to one of {sorted(TRAIN_PRESETS)}"
        )
    preset = params["preset"]
    if preset not in TRAIN_PRESETS:
        raise ValueError(
            f"stgcn_training.preset={preset!r} is not a known preset; known presets: "
            f"{sorted(TRAIN_PRESETS)}"
        )
    overrides = {k: v for k, v in params.items() if k not in PARAMETER_ONLY_KEYS}
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(
            f"unknown stgcn_training parameters {unknown}; known: "
            f"{sorted(known | PARAMETER_ONLY_KEYS)}"
        )
    return TRAIN_PRESETS[preset](**overrides)


@dataclass
class TrainingResult:
    """What a training run produced besides the model (which holds the best epoch's weights)."""

    history: pd.DataFrame  # one row per epoch, columns HISTORY_COLUMNS
    best_epoch: int
    best_val_acc: float
    class_ids: list[int]  # classifier output j <-> action id class_ids[j]
    class_names: list[str]
    model_kwargs: dict[str, Any]
    config: dict[str, Any]
    layout: str
    num_train: int
    num_val: int
    skipped: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["sample_id", "reason"])
    )

    def artifact_meta(self) -> dict[str, Any]:
        """Everything :func:`save_stgcn_artifact` needs to rebuild and use the model."""
        return {
            "model_kwargs": dict(self.model_kwargs),
            "layout": self.layout,
            "class_ids": list(self.class_ids),
            "class_names": list(self.class_names),
            "window": self.config["window"],
            "window_mode": self.config["window_mode"],
            "max_bodies": self.config["max_bodies"],
            "normalise": self.config.get("normalise", "none"),
            "protocol": self.config["protocol"],
            "best_epoch": self.best_epoch,
            "best_val_acc": self.best_val_acc,
            "config": dict(self.config),
        }


# ---------------------------------------------------------------------------------------------
# model construction


def build_stgcn(model_kwargs: dict[str, Any]) -> nn.Module:
    """Instantiate :class:`pose_zsl.models.stgcn.STGCN` from stored constructor arguments."""
    from pose_zsl.models.stgcn import STGCN

    return STGCN(**model_kwargs)


def layout_joint_count(layout: str) -> int:
    from pose_zsl.skeleton.layouts import get_layout

    return get_layout(layout).num_joints


def _reference_init(model: nn.Module) -> None:
    """The original training processor's re-initialisation: conv weights ~ N(0, 0.02), biases 0,
    BatchNorm weights ~ N(1, 0.02)."""
    for module in model.modules():
        if isinstance(module, nn.Conv1d | nn.Conv2d):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)


# ---------------------------------------------------------------------------------------------
# sample selection and the leakage guard


def _validate_class_ids(seen_class_ids: Sequence[int]) -> list[int]:
    ids = [int(c) for c in seen_class_ids]
    if not ids:
        raise ValueError("seen_class_ids is empty: nothing to train on")
    if len(set(ids)) != len(ids):
        raise ValueError(f"seen_class_ids has duplicates: {sorted(ids)}")
    if min(ids) < 0:
        raise ValueError(f"seen_class_ids must be 0-based action ids >= 0, got {sorted(ids)}")
    return sorted(ids)


def _select_training_rows(
    samples: pd.DataFrame, seen_class_ids: Sequence[int], protocol: str
) -> pd.DataFrame:
    """Rows of the protocol's training split whose action is a seen class."""
    seen = samples["action_id"].isin(list(seen_class_ids)).fillna(False).astype(bool)
    train = (samples[protocol] == "train").fillna(False).astype(bool)
    return samples.loc[seen & train]


def assert_seen_only(
    truth: pd.DataFrame,
    sample_ids: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    class_ids: Sequence[int],
    *,
    protocol: str,
    role: str,
) -> None:
    """Leakage guard: raise ValueError unless every sample is a seen-class training sample.

    ``truth`` is the caller's snapshot of the input ``samples`` table (sample_id, action_id and
    the protocol column); ``labels`` are the classifier targets the loader will use, which must
    map back (through ``class_ids``) to each sample's true action id.
    """
    lookup = truth.drop_duplicates("sample_id").set_index("sample_id")
    ids = pd.Index(list(sample_ids), dtype="string")
    missing = ids.difference(lookup.index)
    if len(missing):
        raise ValueError(
            f"leakage guard: the {role} loader holds {len(missing)} sample ids absent from the "
            f"samples table, e.g. {list(missing[:5])}"
        )
    rows = lookup.loc[ids]
    actions = rows["action_id"].to_numpy(dtype=np.int64, na_value=-1)
    seen = set(int(c) for c in class_ids)
    unseen = sorted(set(actions.tolist()) - seen)
    if unseen:
        examples = [str(s) for s in ids[~np.isin(actions, list(seen))][:5]]
        raise ValueError(
            f"leakage guard: the {role} loader holds samples of classes {unseen} that are not "
            f"seen classes (e.g. {examples}); unseen classes must never reach ST-GCN training "
            "or model selection"
        )
    split = rows[protocol].astype("string").fillna("<missing>").to_numpy()
    not_train = sorted(set(split.tolist()) - {"train"})
    if not_train:
        raise ValueError(
            f"leakage guard: the {role} loader holds samples whose {protocol!r} split is "
            f"{not_train}, not 'train'; test samples must never reach training or model selection"
        )
    expected = np.asarray(class_ids, dtype=np.int64)[np.asarray(labels, dtype=np.int64)]
    if not np.array_equal(expected, actions):
        bad = int(np.flatnonzero(expected != actions)[0])
        raise ValueError(
            f"leakage guard: {role} label of sample {ids[bad]!r} maps to action "
            f"{int(expected[bad])} but the samples table says {int(actions[bad])}"
        )


def stratified_holdout(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split item indices into (train, val), holding out ``fraction`` of every class.

    Each class with at least 2 items gives max(1, round(fraction * n)) items to validation but
    always keeps at least one for training. Seeded, independent of the input order's grouping.
    """
    rng = np.random.default_rng([seed, 0x5EED])
    train_parts, val_parts = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        members = members[rng.permutation(len(members))]
        n_val = 0
        if fraction > 0 and len(members) >= 2:
            n_val = min(len(members) - 1, max(1, math.floor(fraction * len(members) + 0.5)))
        val_parts.append(members[:n_val])
        train_parts.append(members[n_val:])
    train = np.sort(np.concatenate(train_parts)) if train_parts else np.zeros(0, np.int64)
    val = np.sort(np.concatenate(val_parts)) if val_parts else np.zeros(0, np.int64)
    return train.astype(np.int64), val.astype(np.int64)


def performer_holdout(
    labels: np.ndarray, performers: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split item indices into (train, val) by performer: whole performers, drawn in a seeded
    order, go to validation until they hold at least ``fraction`` of the items (at least one
    performer, never all of them).

    Raises:
        ValueError: a class would be left without training items (name it), or a performer is
            missing.
    """
    if pd.isna(performers).any():
        raise ValueError("val_by='performer' needs a performer for every training sample")
    unique = np.unique(performers)
    if fraction <= 0 or unique.size < 2:
        return np.arange(len(labels), dtype=np.int64), np.zeros(0, np.int64)
    order = unique[np.random.default_rng([seed, 0x5EED]).permutation(unique.size)]
    held: list[object] = []
    for performer in order[:-1]:
        held.append(performer)
        if np.isin(performers, held).mean() >= fraction:
            break
    is_val = np.isin(performers, held)
    orphaned = sorted(set(labels[is_val].tolist()) - set(labels[~is_val].tolist()))
    if orphaned:
        raise ValueError(
            f"val_by='performer': holding out performers {sorted(held)} leaves class indices "
            f"{orphaned} without training samples; lower val_fraction or use val_by: sample"
        )
    return np.flatnonzero(~is_val).astype(np.int64), np.flatnonzero(is_val).astype(np.int64)


def _resolve_layout(samples: pd.DataFrame, layout: str | None) -> str:
    declared = sorted(set(samples["layout"].dropna().astype(str))) if "layout" in samples else []
    if layout is None:
        if len(declared) != 1:
            raise ValueError(
                f"cannot infer the skeleton layout: the samples table declares {declared}; "
                "pass layout explicitly"
            )
        return declared[0]
    if declared and declared != [layout]:
        raise ValueError(
            f"layout {layout!r} was requested but the samples table declares {declared}"
        )
    return layout


def _fingerprint(store: SequenceStore, positions: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of what a model learns from, in sample order: each sequence's id, shape and
    float32 values, and its label. Data regenerated under the same sample ids gets another
    fingerprint, so a checkpoint trained on the old values is not resumed."""
    digest = hashlib.sha256()
    for position, label in zip(positions.tolist(), labels.tolist(), strict=True):
        digest.update(store.ids[position].encode())
        digest.update(b"\0")
        digest.update(np.asarray(store.shape(position), dtype="<i8").tobytes())
        digest.update(int(label).to_bytes(8, "little", signed=True))
        digest.update(np.ascontiguousarray(store[position], dtype="<f4"))
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# checkpoints


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same directory, then rename over ``path``.

    A crash during the write leaves the previous file intact and no partial file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        torch.save(obj, tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _load_torch_file(path: Path, kind: str, expected_format: str) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several unrelated types for damaged files
        raise CheckpointError(
            f"{path}: cannot read the {kind} ({type(error).__name__}: {error}); the file is "
            "corrupt or not a pose_zsl file"
        ) from error
    _check_payload(payload, path, kind, expected_format)
    return payload


def _check_payload(payload: Any, source: str | Path, kind: str, expected_format: str) -> None:
    if not isinstance(payload, dict) or payload.get("format") != expected_format:
        raise CheckpointError(f"{source}: not a pose_zsl {kind} (format tag missing or different)")
    if payload.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{source}: {kind} format version {payload.get('version')} is not supported "
            f"(expected {FORMAT_VERSION})"
        )


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):  # a different number of visible GPUs
            torch.cuda.set_rng_state_all(state["cuda"])


def _check_resumable(
    path: Path, checkpoint: dict[str, Any], config: TrainConfig, identity: dict[str, Any]
) -> None:
    # a field added after the checkpoint was written counts as its default value there
    written = {**TrainConfig().to_dict(), **checkpoint["config"]}
    saved = {k: v for k, v in written.items() if k not in RUN_ONLY_FIELDS}
    wanted = {k: v for k, v in config.to_dict().items() if k not in RUN_ONLY_FIELDS}
    differences = [
        f"{key}: checkpoint {saved.get(key)!r} != now {wanted.get(key)!r}"
        for key in sorted(set(saved) | set(wanted))
        if saved.get(key) != wanted.get(key)
    ]
    differences += [
        f"{key}: checkpoint {checkpoint['identity'].get(key)!r} != now {value!r}"
        for key, value in identity.items()
        if checkpoint["identity"].get(key) != value
    ]
    if differences:
        raise IncompatibleCheckpointError(
            f"{path}: checkpoint is incompatible with this run ({'; '.join(differences)}); "
            "delete it or rerun with fresh=True to start over"
        )
    if checkpoint["epoch"] + 1 > config.epochs:
        raise IncompatibleCheckpointError(
            f"{path}: checkpoint already has {checkpoint['epoch'] + 1} epochs but the config asks "
            f"for {config.epochs}; raise epochs, or rerun with fresh=True to start over"
        )


# ---------------------------------------------------------------------------------------------
# training


@contextlib.contextmanager
def _cpu_run_settings(deterministic: bool, threads: int | None) -> Iterator[None]:
    """Deterministic kernels (CPU runs) and a thread cap for one run; the caller's settings are
    restored afterwards."""
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_threads = torch.get_num_threads()
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)
        torch.set_num_threads(previous_threads)


def _evaluate(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    device: torch.device,
    dtype: torch.dtype | None,
    ctx: DistContext,
) -> float:
    """Top-1 accuracy of ``model`` over ``loader`` (eval mode, no grad), counted over all
    ranks' shards, so every rank gets the same number."""
    model.eval()
    counts = torch.zeros(2, dtype=torch.int64, device=device)  # correct, total
    with torch.no_grad(), autocast(device, dtype):
        for batch in loader:
            x = batch.x.to(device, non_blocking=True)
            y = batch.y.to(device, non_blocking=True)
            counts[0] += (model(x).argmax(dim=1) == y).sum()
            counts[1] += len(y)
    correct, total = (int(v) for v in ctx.all_reduce_sum(counts).tolist())
    return correct / total if total else float("nan")


def _check_world_size(world_size: int, config: TrainConfig, num_train: int) -> None:
    """Raise ValueError unless ``world_size`` processes can share the data and the batch."""
    if num_train == 0:
        raise ValueError("no training samples are left after screening the sequences")
    if world_size > num_train:
        raise ValueError(
            f"world size {world_size} is larger than the {num_train} training samples: every "
            "process needs at least one sample per epoch; start fewer processes"
        )
    if config.batch_size % world_size:
        raise ValueError(
            f"batch_size={config.batch_size} is the global batch and must be a multiple of the "
            f"world size {world_size} (each process takes an equal share); use e.g. "
            f"batch_size={max(1, config.batch_size // world_size) * world_size}"
        )


def _use_sync_batchnorm(config: TrainConfig, ctx: DistContext) -> bool:
    """Synchronised batch norm: as configured, else on for multi-GPU CUDA runs only."""
    if ctx.world_size < 2:
        return False
    if config.sync_batchnorm is None:
        return ctx.device.type == "cuda"
    return config.sync_batchnorm


def _failure_in_epoch(
    error: RuntimeError,
    ctx: DistContext,
    epoch: int,
    checkpoint_path: Path | None,
    saved_epoch: int | None,
) -> DistributedError:
    """A rank's failure, restated with what the user needs: is it another rank's fault, and
    what is safe on disk."""
    if looks_like_peer_failure(error):
        cause = (
            "another rank probably crashed or stopped answering (collectives wait at most "
            f"distributed_timeout_s={ctx.timeout_s:g} s); look at the other ranks' logs"
        )
    else:
        cause = "this rank failed"
    if checkpoint_path is None:
        saved = "no checkpoint directory was set, so the run must start over"
    elif saved_epoch is None:
        saved = f"no epoch had completed, so {checkpoint_path} was not written yet"
    else:
        saved = (
            f"the checkpoint {checkpoint_path} of epoch {saved_epoch + 1} is intact (written "
            "atomically by rank 0); rerun the same command to resume"
        )
    return DistributedError(
        f"rank {ctx.rank} of {ctx.world_size}: training stopped in epoch {epoch + 1}: {cause}; "
        f"{saved}. Original error: {error}"
    )


def _read_checkpoint(
    path: Path | None, config: TrainConfig, identity: dict[str, Any]
) -> dict[str, Any] | None:
    """The resumable checkpoint at ``path``, or None when there is none."""
    if path is None or not path.exists():
        return None
    checkpoint = _load_torch_file(path, "checkpoint", CHECKPOINT_FORMAT)
    _check_resumable(path, checkpoint, config, identity)
    return checkpoint


@dataclass
class _TrainingSplit:
    """The seen-class training samples that passed selection, screening and the leakage guard:
    ``positions`` are store positions, ``labels`` classifier targets (indices into
    ``class_ids``), ``train_items``/``val_items`` index both."""

    class_ids: list[int]
    class_names: list[str]
    layout: str
    store: SequenceStore
    in_channels: int
    positions: np.ndarray
    labels: np.ndarray
    train_items: np.ndarray
    val_items: np.ndarray
    skipped: pd.DataFrame

    def ids(self, items: np.ndarray) -> list[str]:
        return [self.store.ids[p] for p in self.positions[items]]

    def dataset(self, items: np.ndarray, seed: int) -> SkeletonDataset:
        return SkeletonDataset(self.store, self.positions[items], self.labels[items], seed)

    def identity(self) -> dict[str, Any]:
        """What a checkpoint must have been trained on to be resumed by this run."""
        return {
            "class_ids": self.class_ids,
            "layout": self.layout,
            "train_samples": _fingerprint(
                self.store, self.positions[self.train_items], self.labels[self.train_items]
            ),
            "val_samples": _fingerprint(
                self.store, self.positions[self.val_items], self.labels[self.val_items]
            ),
        }

    def model_kwargs(self, config: TrainConfig) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "num_classes": len(self.class_ids),
            "layout": self.layout,
            "partition": config.partition,
            "edge_importance": config.edge_importance,
            "dropout": config.dropout,
            "width_multiplier": config.width,
            "reference_exact_graph": config.reference_exact_graph,
        }


@dataclass
class _RunSetup:
    """What every stage of one run reads: settings, process group, precision, paths."""

    config: TrainConfig
    ctx: DistContext
    progress: logging.Logger | logging.LoggerAdapter  # rank 0 logs, the others stay quiet
    dtype: torch.dtype | None
    model_kwargs: dict[str, Any]
    identity: dict[str, Any]
    checkpoint_path: Path | None
    sync_batchnorm: bool

    @property
    def device(self) -> torch.device:
        return self.ctx.device


@dataclass
class _Loaders:
    train: torch.utils.data.DataLoader
    sampler: EpochSampler  # the training loader's; set_epoch before every epoch
    val: torch.utils.data.DataLoader
    num_train: int
    num_val: int


@dataclass
class _Runners:
    """The modules an epoch calls, and the model's own NaN-check setting to restore at the end."""

    train: nn.Module  # DDP-wrapped in distributed runs, compiled when asked
    evaluate: nn.Module  # each rank's own shard, outside DDP (no collective per batch)
    check_finite: bool | None


@dataclass
class _TrainState:
    """What resuming restores and every epoch updates; ``saved_epoch`` is the last epoch whose
    checkpoint is on disk."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val_acc: float = -math.inf
    best_state: dict[str, torch.Tensor] | None = None
    start_epoch: int = 0
    saved_epoch: int | None = None

    def record(self, epoch: int, row: dict[str, float], model: nn.Module) -> None:
        """Append the epoch's history row; keep its weights if it is the best so far."""
        self.history.append(row)
        val_acc = row["val_acc"]
        # No validation set: the latest epoch is the selected one.
        if math.isnan(val_acc) or val_acc > self.best_val_acc:
            self.best_epoch, self.best_val_acc = epoch, val_acc
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}


class _EpochFit(NamedTuple):
    train_loss: float
    train_acc: float
    lr: float
    samples_per_s: float


def train_stgcn(
    samples: pd.DataFrame,
    sequences: pa.Table,
    seen_class_ids: Sequence[int],
    config: TrainConfig,
    *,
    layout: str | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: logging.Logger | logging.LoggerAdapter = logger,
    fresh: bool = False,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[nn.Module, TrainingResult]:
    """Train ST-GCN on the seen classes of ``config.protocol``'s training split.

    Run it as one process, or as every rank of a ``torchrun`` launch (detected from the
    ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT`` variables): every
    rank must call it with the same data and config. Each rank then trains on its shard of every
    global batch under DistributedDataParallel, and only rank 0 logs progress and writes the
    checkpoint; every rank returns the same model and result.

    Args:
        samples: the ``samples`` table (all classes and splits; selection happens here).
        sequences: the ``sequences`` table.
        seen_class_ids: 0-based action ids the classifier learns; output j is the j-th smallest.
        config: training settings.
        layout: skeleton layout name; ``None`` takes the one the samples table declares.
        checkpoint_dir: where ``last.pt`` lives (default ``config.checkpoint_dir``); ``None``
            for both disables checkpointing. An existing compatible checkpoint is resumed.
        progress: logger for the per-epoch lines.
        fresh: ignore (and overwrite) an existing checkpoint instead of resuming it.
        on_epoch_end: called as ``on_epoch_end(epoch, history_row)`` after each epoch's
            checkpoint is written, on every rank (used to stop a run early, e.g. in tests).

    Returns:
        The model holding the best epoch's weights (by seen-class validation accuracy, or the
        last epoch when there is no validation set), in eval mode on the training device, and
        a :class:`TrainingResult`.

    Raises:
        ValueError: bad config/input, a layout mismatch, or the leakage guard firing.
        CheckpointError: an unreadable or incompatible checkpoint (message names the file).
        DistributedError: a bad launch (missing rendezvous variable, ranks that do not join),
            or a rank stopped because another rank died or hung (after
            ``config.distributed_timeout_s``); the last checkpoint stays intact.
    """
    split = _select_training_split(samples, sequences, seen_class_ids, config, layout, progress)
    setup = _set_up_run(split, config, checkpoint_dir, progress)
    loaders = _make_loaders(split, setup)
    with _cpu_run_settings(setup.device.type == "cpu", config.cpu_threads):
        model, optimizer = _build_model_and_optimizer(setup)
        state = _resume_or_start(setup, model, optimizer, fresh)
        runners = _prepare_runners(setup, model)
        _log_start(setup, split, loaders)
        _run_epochs(setup, model, optimizer, runners, loaders, state, on_epoch_end)
    model = _final_model(setup, model, state, runners.check_finite)
    result = _training_result(split, setup, loaders, state)
    setup.progress.info(
        "ST-GCN training done: best epoch %d (seen-class val acc %.3f)",
        state.best_epoch + 1,
        state.best_val_acc,
    )
    return model, result


# stage 1: the training split and its leakage guard


def _select_training_split(
    samples: pd.DataFrame,
    sequences: pa.Table,
    seen_class_ids: Sequence[int],
    config: TrainConfig,
    layout: str | None,
    progress: logging.Logger | logging.LoggerAdapter,
) -> _TrainingSplit:
    """The seen classes' samples of the protocol's training split, screened, labelled, held
    out for validation and checked by the leakage guard against a snapshot of ``samples``."""
    class_ids = _validate_class_ids(seen_class_ids)
    protocol = config.protocol
    for column in ("sample_id", "action_id", protocol):
        if column not in samples.columns:
            raise ValueError(f"samples table lacks the column {column!r}")
    layout = _resolve_layout(samples, layout)
    # Snapshot before any selection code runs: the guard compares the loaders against this.
    truth = samples[["sample_id", "action_id", protocol]].copy()
    truth["sample_id"] = truth["sample_id"].astype("string")

    store = SequenceStore(sequences)
    rows = _select_training_rows(samples, class_ids, protocol)
    if rows.empty:
        raise ValueError(
            f"no {protocol!r} training samples of the seen classes {class_ids} in the samples table"
        )
    selected, screened = select_sequences(
        store, rows["sample_id"], layout_joint_count(layout), None, layout, "training samples"
    )
    in_channels = store.shape(int(selected[0]))[3]
    positions = screened.kept
    labels = _seen_labels(store, rows, positions, class_ids)
    train_items, val_items = _hold_out(samples, store, positions, labels, config)
    split = _TrainingSplit(
        class_ids=class_ids,
        class_names=_class_names(samples, class_ids),
        layout=layout,
        store=store,
        in_channels=in_channels,
        positions=positions,
        labels=labels,
        train_items=train_items,
        val_items=val_items,
        skipped=screened.skipped,
    )
    _guard_split(split, truth, protocol)
    _warn_about_split(split, config, progress)
    return split


def _seen_labels(
    store: SequenceStore, rows: pd.DataFrame, positions: np.ndarray, class_ids: list[int]
) -> np.ndarray:
    """Classifier targets of the kept sequences; a selected row of an unseen class raises."""
    action_by_id = dict(zip(rows["sample_id"], rows["action_id"].astype(int), strict=True))
    label_of = {action: j for j, action in enumerate(class_ids)}
    labels = np.array(
        [label_of.get(action_by_id[store.ids[p]], -1) for p in positions], dtype=np.int64
    )
    if (labels < 0).any():
        bad = store.ids[int(positions[np.flatnonzero(labels < 0)[0]])]
        raise ValueError(
            f"leakage guard: selected sample {bad!r} (action {action_by_id[bad]}) is not a seen "
            f"class {class_ids}"
        )
    return labels


def _hold_out(
    samples: pd.DataFrame,
    store: SequenceStore,
    positions: np.ndarray,
    labels: np.ndarray,
    config: TrainConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) item indices: whole performers or a share of every class, as configured."""
    if config.val_by == "performer":
        performer_of = dict(zip(samples["sample_id"], samples["performer"], strict=True))
        performers = np.array([performer_of[store.ids[p]] for p in positions])
        return performer_holdout(labels, performers, config.val_fraction, config.seed)
    return stratified_holdout(labels, config.val_fraction, config.seed)


def _guard_split(split: _TrainingSplit, truth: pd.DataFrame, protocol: str) -> None:
    """The leakage guard on the exact sample ids and labels the loaders will read."""
    train_ids, val_ids = split.ids(split.train_items), split.ids(split.val_items)
    for role, ids, items in (
        ("training", train_ids, split.train_items),
        ("validation", val_ids, split.val_items),
    ):
        assert_seen_only(
            truth, ids, split.labels[items], split.class_ids, protocol=protocol, role=role
        )
    if set(train_ids) & set(val_ids):
        raise ValueError("leakage guard: training and validation samples overlap")


def _warn_about_split(
    split: _TrainingSplit,
    config: TrainConfig,
    progress: logging.Logger | logging.LoggerAdapter,
) -> None:
    class_ids = split.class_ids
    trained = {class_ids[j] for j in split.labels[split.train_items]}
    missing_classes = sorted(set(class_ids) - trained)
    if missing_classes:
        progress.warning("seen classes without any training sample: %s", missing_classes)
    if len(split.val_items) == 0 and config.val_fraction > 0:
        progress.warning("no validation samples could be held out; keeping the last epoch")


def _class_names(samples: pd.DataFrame, class_ids: list[int]) -> list[str]:
    names = (
        samples.dropna(subset=["action_id", "action_name"])
        .drop_duplicates("action_id")
        .set_index("action_id")["action_name"]
        if "action_name" in samples
        else pd.Series(dtype="string")
    )
    return [str(names.get(c, f"action_{c}")) for c in class_ids]


# stage 2: the processes, the loaders, the model


def _set_up_run(
    split: _TrainingSplit,
    config: TrainConfig,
    checkpoint_dir: str | Path | None,
    progress: logging.Logger | logging.LoggerAdapter,
) -> _RunSetup:
    """Join the other ranks (when launched by torchrun), pick the precision, and check that
    every rank trains the same samples with the same settings."""
    # Checked before any rank waits for the others, so a bad launch fails at once everywhere.
    _check_world_size(launch_world_size(), config, len(split.train_items))
    ctx = setup_distributed(resolve_device(config.device), config.distributed_timeout_s)
    progress = rank_logger(progress, ctx)
    dtype = resolve_precision(config.precision, ctx.device)
    configure_backend(ctx.device)
    model_kwargs = split.model_kwargs(config)
    identity = split.identity()
    learning_settings = {k: v for k, v in config.to_dict().items() if k not in RUN_ONLY_FIELDS}
    ctx.check_same((identity, learning_settings), "the training samples and settings")
    checkpoint_dir = checkpoint_dir if checkpoint_dir is not None else config.checkpoint_dir
    return _RunSetup(
        config=config,
        ctx=ctx,
        progress=progress,
        dtype=dtype,
        model_kwargs=model_kwargs,
        identity=identity,
        checkpoint_path=Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None,
        sync_batchnorm=_use_sync_batchnorm(config, ctx),
    )


def _make_loaders(split: _TrainingSplit, setup: _RunSetup) -> _Loaders:
    """This rank's shard of the training (shuffled, augmented) and validation windows."""
    config, ctx = setup.config, setup.ctx
    pin = setup.device.type == "cuda"
    shard = {"rank": ctx.rank, "world_size": ctx.world_size}
    train_set = split.dataset(split.train_items, config.seed)
    val_set = split.dataset(split.val_items, config.seed)
    windows = functools.partial(
        WindowCollate,
        config.window,
        config.max_bodies,
        config.window_mode,
        normalise=config.normalise,
        layout=split.layout,
    )
    train_loader, train_sampler = make_loader(
        train_set,
        windows(train=True, augment=config.augment),
        batch_size=config.batch_size // ctx.world_size,
        shuffle=True,
        seed=config.seed,
        num_workers=config.num_workers,
        pin_memory=pin,
        remainder="pad",
        **shard,
    )
    val_loader, _ = make_loader(
        val_set,
        windows(train=False),
        batch_size=max(1, (config.eval_batch_size or config.batch_size) // ctx.world_size),
        shuffle=False,
        seed=config.seed,
        num_workers=config.num_workers if len(val_set) else 0,
        pin_memory=pin,
        remainder="uneven",
        **shard,
    )
    return _Loaders(train_loader, train_sampler, val_loader, len(train_set), len(val_set))


def _build_model_and_optimizer(setup: _RunSetup) -> tuple[nn.Module, torch.optim.SGD]:
    """The seeded ST-GCN on the training device and its SGD optimizer."""
    config, device = setup.config, setup.device
    torch.manual_seed(config.seed)
    model = build_stgcn(setup.model_kwargs)
    if config.weight_init == "reference":
        _reference_init(model)
    if setup.sync_batchnorm:
        model = convert_sync_batchnorm(model, device)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )
    return model, optimizer


# stage 3: resume or start


def _resume_or_start(
    setup: _RunSetup, model: nn.Module, optimizer: torch.optim.Optimizer, fresh: bool
) -> _TrainState:
    """Load the checkpoint's weights, optimizer, history and RNG state into this run, or start
    at epoch 0 when there is none (or ``fresh``)."""
    config, ctx, path = setup.config, setup.ctx, setup.checkpoint_path
    # Rank 0 reads the checkpoint and sends it to the others: no shared file system needed,
    # and every rank resumes from the same epoch.
    checkpoint = ctx.run_on_main(
        lambda: None if fresh else _read_checkpoint(path, config, setup.identity),
        f"read the checkpoint {path}",
    )
    if checkpoint is None:
        return _TrainState()
    try:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
    except (RuntimeError, ValueError, KeyError) as error:
        raise CheckpointError(
            f"{path}: checkpoint weights do not fit the model ({error}); "
            "delete it or rerun with fresh=True"
        ) from error
    start_epoch = int(checkpoint["epoch"]) + 1
    state = _TrainState(
        history=[dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in checkpoint["history"]],
        best_epoch=int(checkpoint["best_epoch"]),
        best_val_acc=float(checkpoint["best_val_acc"]),
        best_state=checkpoint["best_state"],
        start_epoch=start_epoch,
        saved_epoch=start_epoch - 1,
    )
    if not ctx.active:  # ranks reseed per epoch instead (rank_seed)
        _set_rng_state(checkpoint["rng"])
    setup.progress.info(
        "resuming ST-GCN training from %s after epoch %d/%d", path, start_epoch, config.epochs
    )
    return state


def _prepare_runners(setup: _RunSetup, model: nn.Module) -> _Runners:
    # The batches come from screened sequences, so the model's own per-batch NaN check
    # (a host sync on GPU every step) is redundant here; it is restored before returning.
    check_finite = getattr(model, "check_finite", None)
    if check_finite is not None:
        model.check_finite = False
    trainer = wrap_ddp(model, setup.ctx)
    runner: nn.Module = torch.compile(trainer) if setup.config.compile else trainer
    # Evaluation runs on each rank's own shard, outside DDP (no collective per batch).
    evaluator = runner
    if setup.ctx.active:
        evaluator = torch.compile(model) if setup.config.compile else model
    return _Runners(train=runner, evaluate=evaluator, check_finite=check_finite)


def _log_start(setup: _RunSetup, split: _TrainingSplit, loaders: _Loaders) -> None:
    config, ctx, dtype = setup.config, setup.ctx, setup.dtype
    setup.progress.info(
        "training ST-GCN on %d seen classes: %d train / %d validation samples (%s split), "
        "device %s, precision %s, window %d (%s)",
        len(split.class_ids),
        loaders.num_train,
        loaders.num_val,
        config.protocol,
        setup.device,
        "fp32" if dtype is None else str(dtype).removeprefix("torch."),
        config.window,
        config.window_mode,
    )
    if ctx.active:
        setup.progress.info(
            "distributed over %d processes (%s): global batch %d = %d per process, "
            "synchronised batch norm %s",
            ctx.world_size,
            ctx.backend,
            config.batch_size,
            config.batch_size // ctx.world_size,
            "on" if setup.sync_batchnorm else "off",
        )


# stage 4: the epochs (train, validate, checkpoint)


def _run_epochs(
    setup: _RunSetup,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    runners: _Runners,
    loaders: _Loaders,
    state: _TrainState,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None,
) -> None:
    """Epochs ``state.start_epoch .. config.epochs - 1``; in a distributed run a rank's
    RuntimeError is restated with what is safe on disk (:func:`_failure_in_epoch`)."""
    config = setup.config
    epoch = state.start_epoch
    try:
        for epoch in range(state.start_epoch, config.epochs):
            started = time.perf_counter()
            fit = _train_one_epoch(setup, model, optimizer, runners.train, loaders, epoch, started)
            val_acc = _validate(setup, runners.evaluate, loaders)
            row = {
                "epoch": float(epoch),
                "train_loss": fit.train_loss,
                "train_acc": fit.train_acc,
                "val_acc": val_acc,
                "lr": fit.lr,
                "samples_per_s": fit.samples_per_s,
                "seconds": time.perf_counter() - started,
            }
            state.record(epoch, row, model)
            _write_checkpoint(setup, model, optimizer, state, epoch)
            _log_epoch(setup, epoch, row)
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
    except RuntimeError as error:
        if not setup.ctx.active or isinstance(error, DistributedError):
            raise
        raise _failure_in_epoch(
            error, setup.ctx, epoch, setup.checkpoint_path, state.saved_epoch
        ) from error


def _train_one_epoch(
    setup: _RunSetup,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    runner: nn.Module,
    loaders: _Loaders,
    epoch: int,
    started: float,
) -> _EpochFit:
    """One pass over this rank's training shard; loss and accuracy summed over the ranks."""
    config, ctx, device = setup.config, setup.ctx, setup.device
    lr = config.lr_at(epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr
    loaders.sampler.set_epoch(epoch)
    if ctx.active:
        torch.manual_seed(rank_seed(config.seed, epoch, ctx.rank))
    model.train()
    # loss sum, correct, items: summed over the ranks after the epoch
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    batches = tqdm(
        loaders.train,
        desc=f"epoch {epoch + 1}/{config.epochs}",
        leave=False,
        disable=None if ctx.is_main else True,
    )
    for batch in batches:
        x = batch.x.to(device, non_blocking=True)
        y = batch.y.to(device, non_blocking=True)
        with autocast(device, setup.dtype):
            logits = runner(x)
        # Each rank's mean over its equal share; DDP averages the gradients, which gives the
        # gradient of the global batch's mean loss.
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        totals[0] += loss.detach().double() * len(y)
        totals[1] += (logits.detach().argmax(dim=1) == y).sum()
        totals[2] += len(y)
    loss_sum, correct, seen = ctx.all_reduce_sum(totals).tolist()
    train_loss = loss_sum / seen
    train_seconds = time.perf_counter() - started
    if not math.isfinite(train_loss):
        raise FloatingPointError(
            f"ST-GCN training loss became {train_loss} in epoch {epoch + 1}; "
            f"lower lr ({lr}) or set grad_clip"
        )
    if not setup.sync_batchnorm:
        average_buffers(model, ctx)
    return _EpochFit(train_loss, correct / seen, lr, seen / train_seconds)


def _validate(setup: _RunSetup, evaluator: nn.Module, loaders: _Loaders) -> float:
    """Seen-class validation accuracy over all ranks; NaN without a validation set."""
    if not loaders.num_val:
        return math.nan
    return _evaluate(evaluator, loaders.val, setup.device, setup.dtype, setup.ctx)


def _write_checkpoint(
    setup: _RunSetup,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: _TrainState,
    epoch: int,
) -> None:
    """``last.pt`` after ``epoch`` (rank 0 writes, atomically); nothing without a directory."""
    path = setup.checkpoint_path
    if path is None:
        return
    config = setup.config
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": FORMAT_VERSION,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": {
            "milestones": list(config.lr_milestones),
            "gamma": config.lr_gamma,
            "last_epoch": epoch,
        },
        "history": [[r[c] for c in HISTORY_COLUMNS] for r in state.history],
        "best_epoch": state.best_epoch,
        "best_val_acc": state.best_val_acc,
        "best_state": state.best_state,
        "rng": _rng_state(),
        "config": config.to_dict(),
        "identity": setup.identity,
        "model_kwargs": setup.model_kwargs,
        "world_size": setup.ctx.world_size,
    }
    setup.ctx.run_on_main(
        functools.partial(atomic_torch_save, payload, path), f"write the checkpoint {path}"
    )
    state.saved_epoch = epoch


def _log_epoch(setup: _RunSetup, epoch: int, row: dict[str, float]) -> None:
    setup.progress.info(
        "epoch %d/%d: loss %.4f, train acc %.3f, seen-class val acc %.3f, lr %.3g, "
        "%.1f samples/s, %.1f s",
        epoch + 1,
        setup.config.epochs,
        row["train_loss"],
        row["train_acc"],
        row["val_acc"],
        row["lr"],
        row["samples_per_s"],
        row["seconds"],
    )


# stage 5: the model and result handed back


def _final_model(
    setup: _RunSetup, model: nn.Module, state: _TrainState, check_finite: bool | None
) -> nn.Module:
    """The model with the best epoch's weights, in eval mode on the training device."""
    if setup.sync_batchnorm:
        # Hand back a plain ST-GCN (ordinary BatchNorm layers; same state dict keys).
        model = build_stgcn(setup.model_kwargs).to(setup.device)
        if setup.config.channels_last:
            model.to(memory_format=torch.channels_last)
    elif check_finite is not None:
        model.check_finite = check_finite
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    model.eval()
    return model


def _training_result(
    split: _TrainingSplit, setup: _RunSetup, loaders: _Loaders, state: _TrainState
) -> TrainingResult:
    frame = pd.DataFrame(state.history, columns=list(HISTORY_COLUMNS))
    frame["epoch"] = frame["epoch"].astype("int64")
    return TrainingResult(
        history=frame,
        best_epoch=state.best_epoch,
        best_val_acc=state.best_val_acc,
        class_ids=split.class_ids,
        class_names=split.class_names,
        model_kwargs=setup.model_kwargs,
        config=setup.config.to_dict(),
        layout=split.layout,
        num_train=loaders.num_train,
        num_val=loaders.num_val,
        skipped=split.skipped,
    )


# ---------------------------------------------------------------------------------------------
# model artefact

REQUIRED_META = ("model_kwargs", "class_ids", "class_names", "window", "window_mode", "max_bodies")


def check_class_ids(
    model_class_ids: Sequence[int], requested: Sequence[int], source: str | Path
) -> None:
    """Raise ValueError unless the model's classifier covers exactly the requested classes."""
    have, want = [int(c) for c in model_class_ids], sorted(int(c) for c in requested)
    absent = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    if absent or extra or sorted(have) != want:
        raise ValueError(
            f"{source}: the model was trained on classes {have}, but the data's seen classes "
            f"are {want} (absent from the model: {absent}; not requested: {extra}); retrain "
            "ST-GCN for this split"
        )


def stgcn_artifact(model: nn.Module, meta: dict[str, Any]) -> dict[str, Any]:
    """Weights plus everything needed to rebuild the model, as one dict of tensors and plain
    types (``torch.load(..., weights_only=True)``-safe); what the Kedro catalog stores.

    ``meta`` must hold :data:`REQUIRED_META` (see :meth:`TrainingResult.artifact_meta`).
    """
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise ValueError(f"ST-GCN artefact meta lacks {missing}")
    if len(meta["class_ids"]) != meta["model_kwargs"]["num_classes"]:
        raise ValueError(
            f"ST-GCN artefact meta: {len(meta['class_ids'])} class ids for a "
            f"{meta['model_kwargs']['num_classes']}-way classifier"
        )
    model = getattr(model, "_orig_mod", model)  # unwrap torch.compile
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    return {"format": ARTIFACT_FORMAT, "version": FORMAT_VERSION, "state_dict": state, "meta": meta}


def model_from_artifact(
    payload: Any,
    expected_class_ids: Sequence[int] | None = None,
    source: str | Path = "ST-GCN artefact",
    map_location: str | torch.device = "cpu",
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model stored by :func:`stgcn_artifact`, in eval mode.

    ``expected_class_ids``: the seen classes of the data at hand; a mismatch raises ValueError.
    """
    _check_payload(payload, source, "ST-GCN model artefact", ARTIFACT_FORMAT)
    meta = payload["meta"]
    if expected_class_ids is not None:
        check_class_ids(meta["class_ids"], expected_class_ids, source)
    try:
        model = build_stgcn(meta["model_kwargs"])
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, KeyError, ValueError) as error:
        raise CheckpointError(
            f"{source}: the stored weights do not rebuild an ST-GCN ({error})"
        ) from error
    return model.to(map_location).eval(), meta


def save_stgcn_artifact(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Write :func:`stgcn_artifact` to one torch file, atomically."""
    atomic_torch_save(stgcn_artifact(model, meta), path)


def load_stgcn_artifact(
    path: str | Path,
    expected_class_ids: Sequence[int] | None = None,
    map_location: str | torch.device = "cpu",
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved by :func:`save_stgcn_artifact`, in eval mode."""
    path = Path(path)
    payload = _load_torch_file(path, "ST-GCN model artefact", ARTIFACT_FORMAT)
    return model_from_artifact(payload, expected_class_ids, path, map_location)
