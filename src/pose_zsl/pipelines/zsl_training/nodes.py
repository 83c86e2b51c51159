"""Zero-shot head nodes: train one head per variant and choose its calibration constant.

Only seen-class samples of the protocol's training split reach a head; unseen classes enter
as label text only (as negatives, when configured). The calibration constant is chosen on a
pseudo-unseen split *inside* the seen classes, with a second head that never saw those classes.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from pose_zsl.pipelines.stgcn_training.nodes import seen_class_ids, split_name, unseen_class_ids

logger = logging.getLogger(__name__)


def feature_matrix(features: pd.DataFrame) -> np.ndarray:
    """Stack the ``feature`` column into an ``(N, D)`` float32 matrix."""
    if features.empty:
        raise ValueError("the feature table is empty")
    return np.stack(features["feature"].to_numpy()).astype(np.float32, copy=False)


def class_embeddings(label_embeddings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(K, E)`` label vectors and their ``(K,)`` action ids, ordered by action id."""
    from pose_zsl.text.embedders import embedding_matrix

    ordered = label_embeddings.sort_values("action_id")
    return embedding_matrix(ordered), ordered["action_id"].to_numpy(dtype=np.int64)


def seen_training_rows(features: pd.DataFrame, seen: list[int]) -> pd.DataFrame:
    """Training-split samples of seen classes: the only samples a head may learn from."""
    rows = features[(features["protocol_split"] == "train") & features["action_id"].isin(seen)]
    if rows.empty:
        raise ValueError("no seen-class training samples in the feature table")
    return rows


def _head_config(kind: str, params: dict[str, Any]) -> Any:
    from pose_zsl.models.heads import config_from_dict

    values = dict(params.get(kind) or {})
    values.setdefault("negatives_include_unseen", bool(params["negatives_include_unseen"]))
    return config_from_dict(kind, values, preset=params.get("preset", "synthetic"))


def _train(
    kind: str,
    features: pd.DataFrame,
    label_embeddings: pd.DataFrame,
    seen: list[int],
    params: dict[str, Any],
) -> tuple[Any, pd.DataFrame]:
    from pose_zsl.models.heads import train_head

    train = seen_training_rows(features, seen)
    vectors, class_ids = class_embeddings(label_embeddings)
    return train_head(
        kind,
        feature_matrix(train),
        train["action_id"].to_numpy(dtype=np.int64),
        vectors,
        class_ids,
        seen_class_ids=seen,
        config=_head_config(kind, params),
        seed=int(params["seed"]),
        device=params["device"],
    )


def _train_variant(
    kind: str,
    features: pd.DataFrame,
    label_embeddings: pd.DataFrame,
    split_classes: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[dict, pd.DataFrame]:
    from pose_zsl.models.heads import head_artifact

    seen = seen_class_ids(split_classes)
    model, history = _train(kind, features, label_embeddings, seen, params)
    meta = {
        "split": split_name(split_classes),
        "embedder": str(label_embeddings["embedder"].iloc[0]),
        "seen_class_ids": seen,
        "unseen_class_ids": unseen_class_ids(split_classes),
    }
    return head_artifact(model, meta), history


def train_devise(
    features: pd.DataFrame,
    label_embeddings: pd.DataFrame,
    split_classes: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[dict, pd.DataFrame]:
    """DeViSE (linear projection, hinge rank loss) on the split's seen-class training samples."""
    return _train_variant("devise", features, label_embeddings, split_classes, params)


def train_relation_net(
    features: pd.DataFrame,
    label_embeddings: pd.DataFrame,
    split_classes: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[dict, pd.DataFrame]:
    """Relation Network (attribute + relation nets, episodic MSE) on seen-class samples."""
    return _train_variant("relation_net", features, label_embeddings, split_classes, params)


def train_infonce(
    features: pd.DataFrame,
    label_embeddings: pd.DataFrame,
    split_classes: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[dict, pd.DataFrame]:
    """Cosine projection head with an InfoNCE loss (our addition beside the paper's two)."""
    return _train_variant("infonce", features, label_embeddings, split_classes, params)


HEAD_TRAINERS = {
    "devise": train_devise,
    "relation_net": train_relation_net,
    "infonce": train_infonce,
}


def calibrate_head(
    zsl_model: dict,
    features: pd.DataFrame,
    label_embeddings: pd.DataFrame,
    split_classes: pd.DataFrame,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Choose the calibrated-stacking constant on pseudo-unseen classes inside the seen set.

    A head of the same kind and settings is trained on the seen classes minus the pseudo-unseen
    ones (training split, minus a held-out part); the constant maximising H on the held-out
    samples of those classes and all samples of the pseudo-unseen ones is returned. True
    unseen classes appear nowhere: not as samples, not as candidates.
    """
    from pose_zsl.models.heads import head_from_artifact, score
    from pose_zsl.zsl.calibration import choose_calibration

    kind = head_from_artifact(zsl_model, source="zsl_model").kind
    seen = seen_class_ids(split_classes)
    unseen = unseen_class_ids(split_classes)
    pseudo = sorted(
        int(i) for i in split_classes.loc[split_classes["pseudo_unseen"], "action_id"]
    )
    train_seen = [c for c in seen if c not in pseudo]
    rows = seen_training_rows(features, seen)
    rng = np.random.default_rng(int(params["seed"]))
    held_out = rng.random(len(rows)) < float(params.get("calibration_holdout", 0.25))
    is_pseudo = rows["action_id"].isin(pseudo).to_numpy()
    fit_rows = rows[~is_pseudo & ~held_out]
    val_rows = rows[is_pseudo | held_out]
    candidates = label_embeddings[label_embeddings["action_id"].isin(seen)]
    model, _ = _train(kind, fit_rows, candidates, train_seen, params)
    vectors, class_ids = class_embeddings(candidates)
    choice = choose_calibration(
        score(model, feature_matrix(val_rows), vectors),
        val_rows["action_id"].to_numpy(dtype=np.int64),
        class_ids,
        train_seen,
        pseudo,
        true_unseen_ids=unseen,
    )
    return {
        "gamma": choice.gamma,
        "validation_seen_acc": choice.seen_acc,
        "validation_unseen_acc": choice.unseen_acc,
        "validation_harmonic_mean": choice.harmonic_mean,
        "pseudo_unseen_class_ids": pseudo,
        "num_fit_samples": len(fit_rows),
        "num_validation_samples": len(val_rows),
    }


def head_curves(zsl_history: pd.DataFrame) -> dict:
    """The head's training loss per epoch or episode, as an MLflow metric history."""
    from pose_zsl.reporting import metric_history

    return metric_history(zsl_history, "step", ["loss"])


def head_module(zsl_model: dict) -> Any:
    """The trained head as a ``torch.nn.Module``, for MLflow's pytorch flavour."""
    from pose_zsl.models.heads import head_from_artifact

    return head_from_artifact(zsl_model, source="zsl_model")
