"""Zero-shot head nodes: train one head per variant and choose its calibration constant.

Only seen-class samples of the protocol's training split reach a head; unseen classes enter
as label text only (as negatives, when configured). The calibration constant is chosen on an
honest proxy inside the seen classes (:mod:`pose_zsl.zsl.calibration`): a calibration head of
the variant's kind and settings is trained on the split's calibration ST-GCN features of the
``fit`` calibration samples (that backbone never saw the pseudo-unseen classes nor the
``holdout`` samples), and the constant is chosen on the ``holdout`` and ``pseudo_unseen``
samples, which neither the calibration backbone nor the calibration head saw.

With ``repeats`` N > 1 every variant's head is trained N times, with seeds ``seed``,
``seed + 1``, ..., ``seed + N - 1`` (:func:`repeat_seeds`): the head of ``seed`` is the variant's
``zsl_model`` (exported, served, logged to MLflow), the others its ``zsl_repeat_models``, and
each repeat gets a calibration head and constant of its own seed, so the evaluation can report
the spread of every number over the heads' training seeds.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from pose_zsl.zsl.tables import (
    class_embeddings,
    feature_matrix,
    head_backbone,
    seen_class_ids,
    split_name,
    unseen_class_ids,
    variant_heads,
)

logger = logging.getLogger(__name__)


def seen_training_rows(features: pd.DataFrame, seen: list[int]) -> pd.DataFrame:
    """Training-split samples of seen classes: the only samples a head may learn from."""
    rows = features[(features["protocol_split"] == "train") & features["action_id"].isin(seen)]
    if rows.empty:
        raise ValueError("no seen-class training samples in the feature table")
    return rows


def effective_head_configs(params: dict[str, Any]) -> dict[str, Any]:
    """Every head's training config (the preset and its overrides), as the heads train."""
    from dataclasses import asdict

    from pose_zsl.models.heads import head_configs_from_params

    configs = head_configs_from_params(params)
    return {"preset": params["preset"], **{kind: asdict(c) for kind, c in configs.items()}}


def repeat_seeds(params: dict[str, Any]) -> list[int]:
    """The training seeds of a variant's heads: ``seed`` (the exported head) and, with
    ``repeats`` N > 1, ``seed + 1``, ..., ``seed + N - 1``.

    Raises:
        ValueError: ``repeats`` is not an integer of at least 1.
    """
    from pose_zsl.zsl.repeats import check_repeats

    repeats = check_repeats(params["repeats"])
    seed = int(params["seed"])
    return [seed + r for r in range(repeats)]


def _train(
    kind: str,
    features: pd.DataFrame,
    label_embeddings: pd.DataFrame,
    seen: list[int],
    params: dict[str, Any],
) -> tuple[Any, pd.DataFrame]:
    from pose_zsl.models.heads import head_config_from_params
    from pose_zsl.training.head_trainer import train_head

    train = seen_training_rows(features, seen)
    vectors, class_ids = class_embeddings(label_embeddings)
    return train_head(
        kind,
        feature_matrix(train),
        train["action_id"].to_numpy(dtype=np.int64),
        vectors,
        class_ids,
        seen_class_ids=seen,
        config=head_config_from_params(kind, params),
        seed=int(params["seed"]),
        device=params["device"],
    )


def train_variant(
    kind: str,
    features: pd.DataFrame,
    label_embeddings: pd.DataFrame,
    split_classes: pd.DataFrame,
    params: dict[str, Any],
    repeat_features: pd.DataFrame | None = None,
) -> tuple[dict, pd.DataFrame, list[dict]]:
    """One head of ``kind`` (``devise``, ``relation_net`` or ``infonce``, see
    :mod:`pose_zsl.models.heads`) on the split's seen-class training samples: the head of
    ``seed`` and its history, and the heads of the further repeat seeds.

    With ``repeat_backbone`` on, the head of repeat k >= 1 learns from the features of repeat
    k's own ST-GCN (the rows of ``repeat_features`` of that repeat) and records ``backbone``: k
    in its meta; every other head learns from ``features`` (the split's own ST-GCN)."""
    from pose_zsl.models.heads import head_artifact
    from pose_zsl.zsl.repeats import backbone_rows, head_backbones

    seeds = repeat_seeds(params)
    backbones = head_backbones(params)
    seen = seen_class_ids(split_classes)
    meta = {
        "split": split_name(split_classes),
        "embedder": str(label_embeddings["embedder"].iloc[0]),
        "seen_class_ids": seen,
        "unseen_class_ids": unseen_class_ids(split_classes),
    }
    artefacts, histories = [], []
    for seed, backbone in zip(seeds, backbones, strict=True):
        rows = backbone_rows(features, _or_empty(repeat_features), backbone, "repeat_features")
        model, history = _train(kind, rows, label_embeddings, seen, {**params, "seed": seed})
        # the evaluation's `seed` column reads "seed", its features "backbone" (absent: 0)
        own = {"backbone": backbone} if backbone else {}
        artefacts.append(head_artifact(model, {**meta, "seed": seed, **own}))
        histories.append(history)
    return artefacts[0], histories[0], artefacts[1:]


def _or_empty(table: pd.DataFrame | None) -> pd.DataFrame:
    """A repeat feature table, or an empty one where the caller passed none."""
    return pd.DataFrame(columns=["repeat", "backbone_seed"]) if table is None else table


def _calibration_rows(
    calibration_features: pd.DataFrame, calibration_samples: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit rows, choice rows) of the calibration features, by each sample's calibration role:
    ``fit`` trains the calibration head, ``holdout`` and ``pseudo_unseen`` choose the constant."""
    from pose_zsl.zsl.calibration import CHOICE_ROLES

    role_of = calibration_samples.astype({"sample_id": "string"}).set_index("sample_id")["role"]
    roles = calibration_features["sample_id"].astype("string").map(role_of)
    return (
        calibration_features[(roles == "fit").to_numpy(dtype=bool)],
        calibration_features[roles.isin(CHOICE_ROLES).to_numpy(dtype=bool)],
    )


def calibrate_head(
    zsl_model: dict,
    zsl_repeat_models: list[dict],
    calibration_features: pd.DataFrame,
    calibration_samples: pd.DataFrame,
    label_embeddings: pd.DataFrame,
    split_classes: pd.DataFrame,
    params: dict[str, Any],
    repeat_calibration_features: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Choose the calibrated-stacking constant on the split's pseudo-unseen proxy, once per
    head seed.

    A head of the variant's kind and settings is trained on the calibration ST-GCN's features of
    the ``fit`` calibration samples (seen classes minus the pseudo-unseen ones; candidates: the
    seen classes); the constant maximising H on the ``holdout`` samples (playing seen) and the
    ``pseudo_unseen`` samples (playing unseen) is returned. True unseen classes and test samples
    appear nowhere: not as samples, not as candidates (the leakage guards re-check both sets).

    The calibration head of each head is trained with that head's seed: the top-level keys
    (``gamma``, ...) belong to ``zsl_model``, ``repeat_calibrations`` holds one
    ``{"seed", "gamma", "validation_*"}`` per head of ``zsl_repeat_models`` (empty for one
    repeat).

    A head trained on repeat k's own ST-GCN (meta ``backbone``: k, ``repeat_backbone`` on) is
    calibrated on repeat k's calibration ST-GCN: the rows of ``repeat_calibration_features`` of
    that repeat, under the same leakage guards.
    """
    from pose_zsl.zsl.calibration import (
        CALIBRATION_ROLES,
        CHOICE_ROLES,
        assert_calibration_roles,
        split_class_roles,
    )
    from pose_zsl.zsl.repeats import backbone_rows

    heads = variant_heads(zsl_model, zsl_repeat_models, int(params["seed"]))
    kind = heads[0][0].kind
    seeds = [seed for _, seed in heads]
    artefacts = [zsl_model, *zsl_repeat_models]

    def guarded_rows(backbone: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        features = backbone_rows(
            calibration_features,
            _or_empty(repeat_calibration_features),
            backbone,
            "repeat_calibration_features",
        )
        suffix = f" of repeat {backbone}'s calibration ST-GCN" if backbone else ""

        def guard(rows: pd.DataFrame, roles: Any, where: str) -> None:
            assert_calibration_roles(
                rows["sample_id"],
                roles,
                calibration_samples,
                features,
                split_classes,
                split_column="protocol_split",
                where=where + suffix,
            )

        guard(features, CALIBRATION_ROLES, "the calibration features")
        fit_rows, val_rows = _calibration_rows(features, calibration_samples)
        guard(fit_rows, {"fit"}, "the calibration head's training samples")
        guard(val_rows, CHOICE_ROLES, "the samples the calibration constant is chosen on")
        return fit_rows, val_rows

    rows = {b: guarded_rows(b) for b in dict.fromkeys(head_backbone(a) for a in artefacts)}
    choices = [
        _choose_calibration(
            kind, *rows[head_backbone(a)], label_embeddings, split_classes, params, s
        )
        for a, s in zip(artefacts, seeds, strict=True)
    ]
    main = choices[0]
    fit_rows, val_rows = rows[head_backbone(zsl_model)]
    return {
        "gamma": main.gamma,
        "validation_seen_acc": main.seen_acc,
        "validation_unseen_acc": main.unseen_acc,
        "validation_harmonic_mean": main.harmonic_mean,
        # for the constant of a free-text candidate list (pose_zsl.zsl.calibration)
        "proxy": main.proxy.to_dict(),
        "pseudo_unseen_class_ids": split_class_roles(split_classes)[2],
        "num_fit_samples": len(fit_rows),
        "num_validation_samples": len(val_rows),
        "seed": seeds[0],
        "repeat_calibrations": [
            {
                "seed": seed,
                "gamma": choice.gamma,
                "validation_seen_acc": choice.seen_acc,
                "validation_unseen_acc": choice.unseen_acc,
                "validation_harmonic_mean": choice.harmonic_mean,
            }
            for seed, choice in zip(seeds[1:], choices[1:], strict=True)
        ],
    }


def _choose_calibration(
    kind: str,
    fit_rows: pd.DataFrame,
    val_rows: pd.DataFrame,
    label_embeddings: pd.DataFrame,
    split_classes: pd.DataFrame,
    params: dict[str, Any],
    seed: int,
) -> Any:
    """Train the calibration head of ``seed`` on ``fit_rows`` and choose the constant on
    ``val_rows`` (rows already checked by the leakage guards)."""
    from pose_zsl.models.heads import score
    from pose_zsl.zsl.calibration import choose_calibration, split_class_roles

    seen, unseen, pseudo = split_class_roles(split_classes)
    train_seen = [c for c in seen if c not in pseudo]
    candidates = label_embeddings[label_embeddings["action_id"].isin(seen)]
    model, _ = _train(kind, fit_rows, candidates, train_seen, {**params, "seed": seed})
    vectors, class_ids = class_embeddings(candidates)
    return choose_calibration(
        score(model, feature_matrix(val_rows), vectors),
        val_rows["action_id"].to_numpy(dtype=np.int64),
        class_ids,
        train_seen,
        pseudo,
        true_unseen_ids=unseen,
    )


def head_curves(zsl_history: pd.DataFrame) -> dict:
    """The head's training loss per epoch or episode, as an MLflow metric history."""
    from pose_zsl.reporting import metric_history

    return metric_history(zsl_history, "step", ["loss"])


def head_module(zsl_model: dict) -> Any:
    """The trained head as a ``torch.nn.Module``, for MLflow's pytorch flavour."""
    from pose_zsl.models.heads import head_from_artifact

    return head_from_artifact(zsl_model, source="zsl_model")
