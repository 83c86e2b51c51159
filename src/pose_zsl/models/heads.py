"""Zero-shot heads that match 256-D skeleton features with class-label embeddings.

Three heads share one scoring API (:func:`score`) and one trainer
(:func:`pose_zsl.training.head_trainer.train_head`); this module holds the networks, their
losses and configs, scoring and the head files:

* ``devise``: DeViSE (Frome et al. 2013) as in the paper, section 3.3: a linear projection of the
  visual feature into the label-embedding space, dot-product similarity, hinge rank loss (eq. 1)
  summed over the wrong classes.
* ``relation_net``: Relation Network for zero-shot learning (Sung et al. 2018), paper section 3.4:
  an attribute net maps label embeddings into the visual space, a relation net scores the
  concatenation ``[feature; projected class]`` with a sigmoid, trained with MSE against the one-hot
  match in episodes of sampled seen-class features compared with all class embeddings.
* ``infonce``: a cosine projection head trained with a temperature-scaled softmax over the class
  embeddings (InfoNCE). Not in the paper; reported beside the paper's two heads, never instead.

Both sides are L2-normalised inside (paper section 4.3), so callers pass raw arrays.

Zero-shot integrity (unseen classes take part in training as label embeddings only, never as
samples) is enforced by the trainer, :mod:`pose_zsl.training.head_trainer`.

The Relation Network is vectorised: the first relation layer acting on ``[f; c]`` is split as
``W [f; c] + b = W_f f + (W_c c) + b``, so an episode needs one ``(B, H)`` and one ``(K, H)``
product and a broadcast sum to ``(B, K, H)`` instead of ``B * K`` concatenations.
:func:`relation_scores_reference` keeps the pair-by-pair concatenation for tests and the benchmark.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pose_zsl.training.device import resolve_device

HeadKind = Literal["devise", "relation_net", "infonce"]
HEAD_KINDS: tuple[str, ...] = ("devise", "relation_net", "infonce")

HEAD_FILE_FORMAT = "pose_zsl.zero_shot_head"
HEAD_FILE_VERSION = 1

_SCORE_ELEMENTS = 1 << 24  # bound on the (rows, classes, hidden) block scored at once


# --------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeViSEConfig:
    """DeViSE training settings; defaults are the paper's (section 4.3)."""

    epochs: int = 100
    lr: float = 0.001
    momentum: float = 0.9
    batch_size: int = 64
    margin: float = 0.1
    weight_decay: float = 0.0
    #: An additive bias after the projection. Eq. 1 scores ``t M v`` with no bias: a bias adds
    #: ``t . b`` to every score of class ``t``, a per-class offset independent of the input.
    bias: bool = False
    #: Centre the unit-length features on the mean of the head's training features (then
    #: re-normalise). ST-GCN features are non-negative (ReLU, pooling) and share one dominant
    #: direction, which the projection turns into an input-independent per-class offset (hubness).
    #: The mean is stored in the head, so scoring and inference apply the same shift.
    center: bool = False
    hub_k: int = 0  # hubness correction, see HUB_REFERENCE_ROWS
    #: Unseen classes' label embeddings act as wrong classes in the hinge loss (paper: "seen and
    #: unseen"). Label text only: unseen *samples* never reach training.
    negatives_include_unseen: bool = True
    log_every: int = 10  # epochs between progress records


@dataclass(frozen=True)
class RelationNetConfig:
    """Relation Network training settings; defaults are the paper's (section 4.3).

    The paper does not state hidden widths. Sung et al.'s zero-shot code uses an attribute hidden
    layer of about 0.6-0.8x the visual dimension (1600 and 1200 for 2048-D) and a relation hidden
    layer of 10-30% of the concatenation (400 and 1200 for 4096-D); scaled to 256-D features that
    gives 512 and 128.
    """

    episodes: int = 400_000
    batch_size: int = 32  # seen-class features sampled per episode (with replacement)
    lr: float = 1e-5
    lr_step: int = 200_000  # StepLR step size, in episodes
    lr_gamma: float = 0.5
    weight_decay: float = 0.0
    attribute_hidden: int = 512
    relation_hidden: int = 128
    #: Unseen classes' label embeddings are compared in every episode (target 0). Label text only.
    negatives_include_unseen: bool = True
    #: Initialise the output bias so the first relation scores equal the base rate 1/K.
    prior_output_bias: bool = True
    hub_k: int = 0  # hubness correction, see HUB_REFERENCE_ROWS
    log_every: int = 1000  # episodes per progress record (mean loss over the window)


@dataclass(frozen=True)
class InfoNCEConfig:
    """Cosine projection head with a temperature-scaled softmax over class embeddings."""

    epochs: int = 50
    lr: float = 1e-3
    batch_size: int = 64
    temperature: float = 0.1
    weight_decay: float = 1e-4
    #: An additive bias after the projection (as DeViSE's; off like eq. 1's ``t M v``).
    bias: bool = False
    #: Centre features on the training-feature mean (as DeViSE's ``center``).
    center: bool = False
    hub_k: int = 0  # hubness correction, see HUB_REFERENCE_ROWS
    negatives_include_unseen: bool = True
    log_every: int = 10


HeadConfig = DeViSEConfig | RelationNetConfig | InfoNCEConfig

# Hubness correction, ``hub_k`` in every head's config: subtract from each candidate class's
# scores the mean of that class's ``hub_k`` highest scores over the head's reference features,
# a sample of its own seen-class training features stored in the head. This is CSLS (Lample et
# al. 2018) without its per-recording term, which cannot change a recording's ranking. A class
# that scores high for every recording (a hub) is otherwise predicted for most unseen samples.
# The penalty comes from training features only, per class, so a recording's scores never depend
# on the other recordings scored with it. 0: off (the paper).
#: At most this many training features are kept in a head for its hubness correction.
HUB_REFERENCE_ROWS = 2048

_CONFIG_TYPES: dict[str, type] = {
    "devise": DeViSEConfig,
    "relation_net": RelationNetConfig,
    "infonce": InfoNCEConfig,
}

#: Schedule presets, chosen by ``zsl_training.preset``: every field of every head's config.
#: ``paper`` is the paper's section 4.3 (the dataclass defaults); ``synthetic`` is a short
#: schedule that learns on the small synthetic feature sets in seconds on a CPU. Parameters
#: override single fields per head (:func:`head_config_from_params`); a preset is never
#: changed by another environment's overrides because it lives here, not in the YAML.
HEAD_PRESETS: dict[str, dict[str, HeadConfig]] = {
    "paper": {
        "devise": DeViSEConfig(),
        "relation_net": RelationNetConfig(),
        "infonce": InfoNCEConfig(),
    },
    "synthetic": {
        # bias=False, center=True: chosen on pseudo-unseen splits inside the seen training
        # samples. Centring took 7-10 points off DeViSE's most-predicted-class share at equal
        # accuracy, and gave InfoNCE with learned label embeddings ~1.6 points of top-1.
        "devise": DeViSEConfig(epochs=40, lr=0.01, bias=False, center=True, log_every=10),
        # hub_k=20: on 48 pseudo-unseen splits inside the seen training samples (5 classes each,
        # paired), the Relation Net gained 3.0 points of top-1 [0.3, 5.7]; k=5 and k=100 did
        # about as well. DeViSE and InfoNCE, already centred, lost at k=5 and k=20 and gained
        # at most InfoNCE's +2.4 [0.1, 4.7] at k=100 (one of 12 comparisons): they keep 0.
        "relation_net": RelationNetConfig(
            episodes=1500,
            lr=0.002,
            lr_step=1000,
            attribute_hidden=256,
            relation_hidden=128,
            hub_k=20,
            log_every=250,
        ),
        "infonce": InfoNCEConfig(epochs=40, bias=False, center=True, log_every=10),
    },
}


def _check_kind(kind: str) -> None:
    if kind not in HEAD_KINDS:
        raise ValueError(f"unknown head kind {kind!r}; expected one of {HEAD_KINDS}")


def default_config(kind: str, preset: str = "paper") -> HeadConfig:
    """The head's config in a named preset of :data:`HEAD_PRESETS` (default: the paper's)."""
    _check_kind(kind)
    if preset not in HEAD_PRESETS:
        raise ValueError(f"unknown config preset {preset!r}; known presets: {sorted(HEAD_PRESETS)}")
    return HEAD_PRESETS[preset][kind]


def config_from_dict(
    kind: str,
    values: Mapping[str, Any] | None = None,
    preset: str = "paper",
) -> HeadConfig:
    """Overlay ``values`` (e.g. Kedro parameters) on a preset; unknown keys raise ValueError."""
    base = default_config(kind, preset)
    values = dict(values or {})
    known = {f.name for f in fields(base)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown {kind} head parameter(s) {unknown}; known parameters: {sorted(known)}"
        )
    merged = {**asdict(base), **values}
    config = type(base)(**merged)
    validate_config(kind, config)
    return config


def head_config_from_params(kind: str, params: Mapping[str, Any]) -> HeadConfig:
    """The effective config of one head from the ``zsl_training`` parameters.

    ``params["preset"]`` names the schedule (:data:`HEAD_PRESETS`), ``params[kind]`` overrides
    single fields of it, and ``params["negatives_include_unseen"]`` applies to every head
    unless ``params[kind]`` sets it.
    """
    _check_kind(kind)
    if "preset" not in params:
        raise ValueError(f"zsl_training.preset is missing; set it to one of {sorted(HEAD_PRESETS)}")
    preset = params["preset"]
    if preset not in HEAD_PRESETS:
        raise ValueError(
            f"zsl_training.preset={preset!r} is not a known preset; known presets: "
            f"{sorted(HEAD_PRESETS)}"
        )
    overrides = params.get(kind) or {}
    if not isinstance(overrides, Mapping):
        raise ValueError(
            f"zsl_training.{kind} must be a mapping of {kind} config fields, got {overrides!r}"
        )
    values = dict(overrides)
    values.setdefault("negatives_include_unseen", bool(params["negatives_include_unseen"]))
    try:
        return config_from_dict(kind, values, preset=preset)
    except ValueError as error:
        raise ValueError(f"zsl_training.{kind}: {error}") from None


def head_configs_from_params(params: Mapping[str, Any]) -> dict[str, HeadConfig]:
    """:func:`head_config_from_params` for every head kind."""
    return {kind: head_config_from_params(kind, params) for kind in HEAD_KINDS}


def validate_config(kind: str, config: HeadConfig) -> None:
    """Raise ValueError unless ``kind`` is a head kind and ``config`` usable settings for it."""
    _check_kind(kind)
    expected = _CONFIG_TYPES[kind]
    if not isinstance(config, expected):
        raise ValueError(f"{kind} head needs a {expected.__name__}, got {type(config).__name__}")
    steps = config.episodes if isinstance(config, RelationNetConfig) else config.epochs
    if steps < 1:
        raise ValueError(f"{kind} config: the number of epochs/episodes must be >= 1, got {steps}")
    if config.batch_size < 1:
        raise ValueError(f"{kind} config: batch_size must be >= 1, got {config.batch_size}")
    if not config.lr > 0:
        raise ValueError(f"{kind} config: lr must be > 0, got {config.lr}")
    if config.log_every < 1:
        raise ValueError(f"{kind} config: log_every must be >= 1, got {config.log_every}")
    if isinstance(config, RelationNetConfig) and (config.lr_step < 1 or not config.lr_gamma > 0):
        raise ValueError(
            f"relation_net config: lr_step must be >= 1 and lr_gamma > 0, got "
            f"{config.lr_step} and {config.lr_gamma}"
        )
    if isinstance(config, DeViSEConfig | InfoNCEConfig):
        for name in ("bias", "center"):
            if not isinstance(getattr(config, name), bool):
                raise ValueError(
                    f"{kind} config: {name} must be true or false, got {getattr(config, name)!r}"
                )
    if isinstance(config.hub_k, bool) or not isinstance(config.hub_k, int) or config.hub_k < 0:
        raise ValueError(
            f"{kind} config: hub_k must be an integer >= 0 (0: no hubness correction), "
            f"got {config.hub_k!r}"
        )
    if isinstance(config, InfoNCEConfig) and not config.temperature > 0:
        raise ValueError(f"infonce config: temperature must be > 0, got {config.temperature}")


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------


def hinge_rank_loss(scores: Tensor, target_index: Tensor, margin: float = 0.1) -> Tensor:
    """DeViSE hinge rank loss (paper eq. 1), summed over wrong classes, mean over the batch.

    Args:
        scores: ``(B, K)`` similarities ``t_j M v`` of each sample with each candidate class.
        target_index: ``(B,)`` column of the true class in ``scores``.
        margin: the hinge margin (paper: 0.1).
    """
    true_scores = scores.gather(1, target_index[:, None])
    violations = torch.clamp(margin - true_scores + scores, min=0.0)
    is_wrong = torch.ones_like(scores, dtype=torch.bool)
    is_wrong.scatter_(1, target_index[:, None], False)
    return (violations * is_wrong).sum(dim=1).mean()


def relation_mse_loss(relations: Tensor, target_index: Tensor) -> Tensor:
    """Relation Network loss: mean squared error of ``(B, K)`` relation scores vs one-hot."""
    one_hot = F.one_hot(target_index, num_classes=relations.shape[1]).to(relations.dtype)
    return F.mse_loss(relations, one_hot)


def infonce_loss(similarities: Tensor, target_index: Tensor, temperature: float) -> Tensor:
    """Cross-entropy of cosine similarities divided by a temperature."""
    return F.cross_entropy(similarities / temperature, target_index)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class ZeroShotHead(nn.Module):
    """Base class: ``forward(features, class_embeddings) -> (B, K)`` scores (higher = closer).

    Inputs to ``forward`` are expected L2-normalised; :func:`score` and :func:`train_head` do it.
    ``config`` and ``seen_class_ids`` are filled by :func:`train_head` / :func:`load_head`.
    """

    kind: ClassVar[str] = ""

    def __init__(
        self, feature_dim: int, embedding_dim: int, hub_k: int = 0, reference_rows: int = 0
    ) -> None:
        super().__init__()
        self.feature_dim = int(feature_dim)
        self.embedding_dim = int(embedding_dim)
        self.hub_k = int(hub_k)
        self.reference_rows = int(reference_rows)
        self.config: HeadConfig | None = None
        self.seen_class_ids: np.ndarray | None = None
        if self.hub_k:
            # Filled by train_head with the head's own training features (HUB_REFERENCE_ROWS).
            self.register_buffer("reference_features", torch.zeros(reference_rows, feature_dim))

    def dims(self) -> dict[str, int]:
        """Constructor arguments, stored by :func:`save_head`."""
        return {
            "feature_dim": self.feature_dim,
            "embedding_dim": self.embedding_dim,
            "hub_k": self.hub_k,
            "reference_rows": self.reference_rows,
        }

    def score_block_rows(self, num_classes: int) -> int:
        """How many feature rows :func:`score` passes to ``forward`` at once."""
        return 8192

    def logits(self, features: Tensor, class_embeddings: Tensor) -> Tensor:
        """``(B, K)`` scores before any squashing: what :func:`score` returns.

        Ranking is the same as ``forward``'s; calibrated stacking subtracts a constant on this
        scale, where it is the same correction for every recording (see the Relation Network).
        """
        return self(features, class_embeddings)


class _ProjectionHead(ZeroShotHead):
    """A linear projection of the visual feature into the label space (``bias`` optional).

    With ``center``, the buffer ``feature_mean`` holds the mean of the unit-length training
    features, set by :func:`train_head`; :func:`score` subtracts it before projecting.
    """

    def __init__(
        self,
        feature_dim: int = 256,
        embedding_dim: int = 700,
        bias: bool = False,
        center: bool = False,
        hub_k: int = 0,
        reference_rows: int = 0,
    ) -> None:
        super().__init__(feature_dim, embedding_dim, hub_k, reference_rows)
        self.bias = bool(bias)
        self.center = bool(center)
        self.projection = nn.Linear(feature_dim, embedding_dim, bias=self.bias)
        if self.center:
            self.register_buffer("feature_mean", torch.zeros(feature_dim))

    def dims(self) -> dict[str, Any]:
        return {**super().dims(), "bias": self.bias, "center": self.center}


class DeViSEHead(_ProjectionHead):
    """Linear projection of visual features into the label space; dot-product similarity."""

    kind: ClassVar[str] = "devise"

    def forward(self, features: Tensor, class_embeddings: Tensor) -> Tensor:
        return self.projection(features) @ class_embeddings.T


class InfoNCEHead(_ProjectionHead):
    """Linear projection, cosine similarity with the class embeddings."""

    kind: ClassVar[str] = "infonce"

    def forward(self, features: Tensor, class_embeddings: Tensor) -> Tensor:
        return F.normalize(self.projection(features), dim=1) @ class_embeddings.T


class RelationNetwork(ZeroShotHead):
    """Attribute net (E -> hidden -> feature_dim, ReLU after each) and relation net
    (2 * feature_dim -> hidden -> 1, ReLU then sigmoid) scoring ``[feature; projected class]``."""

    kind: ClassVar[str] = "relation_net"

    def __init__(
        self,
        feature_dim: int = 256,
        embedding_dim: int = 700,
        attribute_hidden: int = 512,
        relation_hidden: int = 128,
        hub_k: int = 0,
        reference_rows: int = 0,
    ) -> None:
        super().__init__(feature_dim, embedding_dim, hub_k, reference_rows)
        self.attribute_hidden = int(attribute_hidden)
        self.relation_hidden = int(relation_hidden)
        self.attribute_net = nn.Sequential(
            nn.Linear(embedding_dim, attribute_hidden),
            nn.ReLU(),
            nn.Linear(attribute_hidden, feature_dim),
            nn.ReLU(),
        )
        # Kept as one Linear over the concatenation so the parameters are those of the paper's
        # architecture; forward() uses its two column blocks separately.
        self.relation_fc1 = nn.Linear(2 * feature_dim, relation_hidden)
        self.relation_fc2 = nn.Linear(relation_hidden, 1)

    def dims(self) -> dict[str, int]:
        return {
            **super().dims(),
            "attribute_hidden": self.attribute_hidden,
            "relation_hidden": self.relation_hidden,
        }

    def score_block_rows(self, num_classes: int) -> int:
        return max(1, _SCORE_ELEMENTS // max(1, num_classes * self.relation_hidden))

    def project_classes(self, class_embeddings: Tensor) -> Tensor:
        """``(K, E)`` label embeddings -> ``(K, feature_dim)`` points in the visual space."""
        return self.attribute_net(class_embeddings)

    def forward(self, features: Tensor, class_embeddings: Tensor) -> Tensor:
        """All ``(B, K)`` relation scores (in (0, 1), trained by MSE) of an episode."""
        return torch.sigmoid(self.logits(features, class_embeddings))

    def logits(self, features: Tensor, class_embeddings: Tensor) -> Tensor:
        """The ``(B, K)`` relation scores' log-odds, in one batched pass.

        Scoring uses these rather than the sigmoid: recordings unlike the training data get
        relation scores of 1e-5 or less, so a calibration constant on the probability scale
        would swamp them, while on the log-odds scale it divides every candidate's odds by the
        same factor whatever the recording. The sigmoid also rounds to exactly 1 in float32
        above a log-odds of about 17, which would tie confident candidates.
        """
        projected = self.project_classes(class_embeddings)
        weight = self.relation_fc1.weight
        feature_part = F.linear(features, weight[:, : self.feature_dim], self.relation_fc1.bias)
        class_part = F.linear(projected, weight[:, self.feature_dim :])
        # In place: autograd does not need the sum, and (B, K, H) is the episode's largest tensor.
        hidden = torch.relu_(feature_part[:, None, :] + class_part[None, :, :])  # (B, K, H)
        return F.linear(hidden, self.relation_fc2.weight, self.relation_fc2.bias).squeeze(-1)

    def relate_concatenated(self, pairs: Tensor) -> Tensor:
        """Relation scores of explicit ``(P, 2 * feature_dim)`` concatenations ``[f; c]``."""
        hidden = torch.relu(self.relation_fc1(pairs))
        return torch.sigmoid(self.relation_fc2(hidden)).squeeze(-1)


def relation_scores_reference(
    model: RelationNetwork, features: Tensor, class_embeddings: Tensor
) -> Tensor:
    """Pair-by-pair relation scores via explicit concatenation (the unvectorised formulation).

    For tests (equality with :meth:`RelationNetwork.forward`) and the benchmark baseline only:
    ``B * K`` separate relation-net calls.
    """
    projected = model.project_classes(class_embeddings)
    rows = []
    for i in range(features.shape[0]):
        row = [
            model.relate_concatenated(torch.cat([features[i], projected[k]])[None, :])
            for k in range(projected.shape[0])
        ]
        rows.append(torch.cat(row))
    return torch.stack(rows)


_HEAD_TYPES: dict[str, type[ZeroShotHead]] = {
    "devise": DeViSEHead,
    "relation_net": RelationNetwork,
    "infonce": InfoNCEHead,
}


def build_head(
    kind: str, feature_dim: int, embedding_dim: int, config: HeadConfig, reference_rows: int = 0
) -> ZeroShotHead:
    """A freshly initialised head of ``kind`` (uses the global torch RNG); ``reference_rows``:
    how many training features it keeps for the hubness correction (with ``hub_k``)."""
    _check_kind(kind)
    hub = {"hub_k": config.hub_k, "reference_rows": reference_rows if config.hub_k else 0}
    if isinstance(config, RelationNetConfig):
        return RelationNetwork(
            feature_dim, embedding_dim, config.attribute_hidden, config.relation_hidden, **hub
        )
    return _HEAD_TYPES[kind](
        feature_dim, embedding_dim, bias=config.bias, center=config.center, **hub
    )


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


def as_matrix(name: str, values: np.ndarray, columns: int | None = None) -> np.ndarray:
    """``values`` as a finite float32 ``(N, columns)`` matrix with N >= 1; bad input raises
    ValueError naming ``name`` (and the first non-finite rows)."""
    array = np.asarray(values)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if columns is not None and array.shape[1] != columns:
        raise ValueError(f"{name} has {array.shape[1]} columns, expected {columns}")
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    array = array.astype(np.float32, copy=False)
    bad_rows = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if bad_rows.size:
        raise ValueError(
            f"{name} has non-finite values (NaN/inf) in {bad_rows.size} row(s), "
            f"first rows {bad_rows[:5].tolist()}"
        )
    return array


def l2_normalise(name: str, values: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; an all-zero row raises (its direction is undefined)."""
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        raise ValueError(f"{name} has all-zero row(s) {zero[:5].tolist()}: cannot L2-normalise")
    return (values / norms).astype(np.float32)


def head_input_features(model: ZeroShotHead, features: np.ndarray) -> np.ndarray:
    """Features as the head sees them: unit length, then (``center`` heads) shifted by the
    stored training-feature mean and brought back to unit length."""
    unit = l2_normalise("features", features)
    mean = getattr(model, "feature_mean", None)
    if mean is None:
        return unit
    return l2_normalise(
        "features (centred on the head's training-feature mean)", unit - mean.cpu().numpy()
    )


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


def score(
    model: ZeroShotHead,
    features: np.ndarray,
    class_embeddings: np.ndarray,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """``(N, K)`` float32 scores of each feature against each class embedding (higher = closer):
    the head's :meth:`~ZeroShotHead.logits` (the Relation Network's log-odds).

    Columns follow the rows of ``class_embeddings``. Both inputs are L2-normalised here
    (features also centred for ``center`` heads, :func:`head_input_features`).
    """
    features = as_matrix("features", features, columns=model.feature_dim)
    embeddings = as_matrix("class_embeddings", class_embeddings, columns=model.embedding_dim)
    torch_device = resolve_device(str(device))
    model = model.to(torch_device)
    was_training = model.training
    model.eval()
    feats = torch.from_numpy(head_input_features(model, features))
    classes = torch.from_numpy(l2_normalise("class_embeddings", embeddings)).to(torch_device)
    try:
        with torch.no_grad():
            out = _logits_in_blocks(model, feats, classes, torch_device)
            if model.hub_k:
                out -= hub_penalty(model, classes, torch_device)
    finally:
        model.train(was_training)
        model.cpu()
    return out


def _logits_in_blocks(
    model: ZeroShotHead, feats: Tensor, classes: Tensor, device: torch.device
) -> np.ndarray:
    block = model.score_block_rows(classes.shape[0])
    out = np.empty((feats.shape[0], classes.shape[0]), dtype=np.float32)
    for start in range(0, feats.shape[0], block):
        rows = feats[start : start + block].to(device)
        out[start : start + block] = model.logits(rows, classes).cpu().numpy()
    return out


def hub_penalty(model: ZeroShotHead, classes: Tensor, device: torch.device) -> np.ndarray:
    """``(K,)`` each class's mean of its ``hub_k`` highest scores over the head's reference
    features (see :data:`HUB_REFERENCE_ROWS`); ``classes`` prepared as in :func:`score`."""
    reference = model.reference_features.cpu().numpy()
    prepared = torch.from_numpy(head_input_features(model, reference))
    scores = _logits_in_blocks(model, prepared, classes, device)
    k = min(model.hub_k, scores.shape[0])
    top = -np.sort(-scores, axis=0)[:k]
    return top.mean(axis=0, dtype=np.float64).astype(np.float32)


def joint_space_points(
    model: ZeroShotHead, features: np.ndarray, class_embeddings: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Samples and classes as points of the head's joint pose-language space.

    DeViSE and InfoNCE project features into the label space (classes stay where they are);
    the Relation Network's attribute net maps classes into the visual space (features stay).
    Both inputs are prepared as for scoring.
    """
    feats = torch.from_numpy(head_input_features(model, as_matrix("features", features)))
    classes = torch.from_numpy(
        l2_normalise("class_embeddings", as_matrix("class_embeddings", class_embeddings))
    )
    model = model.cpu().eval()
    with torch.no_grad():
        if isinstance(model, RelationNetwork):
            return feats.numpy(), model.project_classes(classes).numpy()
        return model.projection(feats).numpy(), classes.numpy()


# --------------------------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------------------------


def head_artifact(model: ZeroShotHead, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Kind, config, dims, seen classes, weights and optional plain ``meta`` as one dict of
    tensors and plain types (``torch.load(..., weights_only=True)``-safe)."""
    if not isinstance(model, ZeroShotHead) or model.kind not in HEAD_KINDS:
        raise ValueError(f"not a trained zero-shot head: {type(model).__name__}")
    return {
        "format": HEAD_FILE_FORMAT,
        "version": HEAD_FILE_VERSION,
        "kind": model.kind,
        "dims": model.dims(),
        "config": asdict(model.config) if model.config is not None else None,
        "seen_class_ids": (
            [int(i) for i in model.seen_class_ids] if model.seen_class_ids is not None else None
        ),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(meta or {}),
    }


#: Fields that head files written before they existed lack, with the value those files were
#: trained with (the projection heads always had a bias then, and never centred features).
_LEGACY_FIELDS: dict[str, dict[str, Any]] = {
    "devise": {"bias": True, "center": False},
    "infonce": {"bias": True, "center": False},
}


def head_from_artifact(payload: Any, source: str | Path = "head artefact") -> ZeroShotHead:
    """Rebuild the head stored by :func:`head_artifact`, in eval mode.

    Raises:
        ValueError: not a head artefact, another format version, an unknown kind, or weights
            that do not fit the declared architecture; the message names ``source``.
    """
    if not isinstance(payload, dict) or payload.get("format") != HEAD_FILE_FORMAT:
        raise ValueError(f"{source}: not a zero-shot head file (missing format tag)")
    if payload.get("version") != HEAD_FILE_VERSION:
        raise ValueError(
            f"{source}: head file version {payload.get('version')!r}, this code reads "
            f"{HEAD_FILE_VERSION}"
        )
    kind = payload.get("kind")
    if kind not in HEAD_KINDS:
        raise ValueError(f"{source}: unknown head kind {kind!r}")
    try:
        stored_config = payload.get("config")
        legacy = _LEGACY_FIELDS.get(kind, {})
        config = None
        if stored_config is not None:
            config = _CONFIG_TYPES[kind](**{**legacy, **stored_config})
        # files written before the hubness correction existed had none
        dims = {"hub_k": 0, "reference_rows": 0, **legacy, **dict(payload["dims"])}
        model = _HEAD_TYPES[kind](**dims)
        model.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(
            f"{source}: head file incompatible with the {kind} architecture ({exc})"
        ) from exc
    if model.dims() != dims:
        raise ValueError(f"{source}: stored dims {dims} disagree with the rebuilt {model.dims()}")
    model.config = config
    seen = payload.get("seen_class_ids")
    model.seen_class_ids = np.asarray(seen, dtype=np.int64) if seen is not None else None
    model.eval()
    return model


def save_head(model: ZeroShotHead, path: str | Path, meta: Mapping[str, Any] | None = None) -> None:
    """Write :func:`head_artifact` to one torch file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(head_artifact(model, meta), path)


def load_head(path: str | Path) -> ZeroShotHead:
    """Read a file written by :func:`save_head`.

    Raises:
        ValueError: the file is missing, corrupt, or not a compatible head file (names the path).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such head file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{path}: not a readable zero-shot head file ({exc})") from exc
    return head_from_artifact(payload, source=path)
