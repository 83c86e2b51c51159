"""Label-embedding nodes: thin wrappers over :mod:`pose_zsl.text.embedders`."""

from __future__ import annotations

from typing import Any

import pandas as pd


def embed_action_labels(actions: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Embed every class name (plus optional descriptions / templates) with the configured
    embedder: the grid's ``learned`` embedding."""
    from pose_zsl.text.embedders import build_label_embeddings

    name = params["embedder"]
    options = {
        "sentence_transformers": lambda: {"model": o} if (o := params[name].get("model")) else {},
        "sent2vec": lambda: {"model_path": params[name]["model_path"]},
    }
    if name not in options:
        raise ValueError(
            f"parameter label_embedding.embedder={name!r}: expected one of {sorted(options)}"
        )
    return build_label_embeddings(
        actions.sort_values("action_id")["action_name"].tolist(),
        name,
        embedder_options=options[name](),
        custom_texts=params.get("descriptions") or None,
        templates=params.get("templates") or None,
        fallback=bool(params.get("sent2vec", {}).get("fallback_to_default", False)),
    )


def random_label_embeddings(learned: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The paper's ablation: seeded Gaussian vectors of the learned embedding's dimension."""
    from pose_zsl.text.embedders import label_embedding_table, make_embedder

    dim = int(learned["dim"].iloc[0])
    embedder = make_embedder("random", dim=dim, seed=int(params["random"]["seed"]))
    ordered = learned.sort_values("action_id")
    return label_embedding_table(
        ordered["action_name"].tolist(), embedder, [list(t) for t in ordered["texts"]]
    )
