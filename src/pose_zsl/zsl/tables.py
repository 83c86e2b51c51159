"""The tables the pipelines hand each other, read the same way everywhere: a split's class
table (``split``, ``action_id``, ``role``), a feature table (``feature`` vectors per sample),
a label-embedding table, and a variant's head artefacts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def seen_class_ids(split_classes: pd.DataFrame) -> list[int]:
    """The split's seen action ids (the only classes ST-GCN may be trained on)."""
    return sorted(int(i) for i in split_classes.loc[split_classes["role"] == "seen", "action_id"])


def unseen_class_ids(split_classes: pd.DataFrame) -> list[int]:
    return sorted(int(i) for i in split_classes.loc[split_classes["role"] == "unseen", "action_id"])


def split_name(split_classes: pd.DataFrame) -> str:
    names = split_classes["split"].unique()
    if len(names) != 1:
        raise ValueError(f"split_classes must describe one split, got {list(names)}")
    return str(names[0])


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


def head_seed(artefact: dict, default: int) -> int:
    """The training seed a head artefact records (``default`` for files written before heads
    recorded it)."""
    return int((artefact.get("meta") or {}).get("seed", default))


def head_backbone(artefact: dict) -> int:
    """The repeat whose ST-GCN a head artefact was trained on (meta ``backbone``; 0, the
    split's own ST-GCN, when absent: ``zsl_training.repeat_backbone`` off)."""
    return int((artefact.get("meta") or {}).get("backbone", 0))


def variant_heads(
    zsl_model: dict, zsl_repeat_models: list[dict], default_seed: int
) -> list[tuple[Any, int]]:
    """``(head, seed)`` of the variant's head and of each repeat head, in that order.

    Raises:
        ValueError: a repeat head of another kind than ``zsl_model`` or without a recorded
            seed, or two heads sharing a seed.
    """
    from pose_zsl.models.heads import head_from_artifact

    main = head_from_artifact(zsl_model, source="zsl_model")
    heads = [(main, head_seed(zsl_model, default_seed))]
    for position, artefact in enumerate(zsl_repeat_models):
        source = f"zsl_repeat_models[{position}]"
        head = head_from_artifact(artefact, source=source)
        if head.kind != main.kind:
            raise ValueError(
                f"{source} is a {head.kind} head, not a {main.kind} head like zsl_model"
            )
        if "seed" not in (artefact.get("meta") or {}):
            raise ValueError(f"{source} records no training seed (meta 'seed')")
        heads.append((head, head_seed(artefact, default_seed)))
    seeds = [seed for _, seed in heads]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"the variant's heads share a training seed: {seeds}")
    return heads
