"""Label-embedding nodes: thin wrappers over :mod:`pose_zsl.text.embedders`."""

from __future__ import annotations

from typing import Any

import pandas as pd

from pose_zsl.grid import RANDOM_EMBEDDING

#: What a learned variant embeds per class (``label_embedding.variants.<name>.text``): the
#: readable name (through ``templates``), the mean of the class's descriptions, or both.
LABEL_TEXTS = ("name", "descriptions", "name+descriptions")


def _embedder_options(params: dict[str, Any], name: str) -> dict[str, Any]:
    options = {
        "sentence_transformers": lambda: {"model": o} if (o := params[name].get("model")) else {},
        "sent2vec": lambda: {"model_path": params[name]["model_path"]},
    }
    if name not in options:
        raise ValueError(
            f"parameter label_embedding.embedder={name!r}: expected one of {sorted(options)}"
        )
    return options[name]()


def embed_action_labels(
    actions: pd.DataFrame, params: dict[str, Any], variant: dict[str, Any], *, name: str
) -> pd.DataFrame:
    """Embed every class with the configured embedder, as one learned variant of the grid asks:
    its ``text`` is one of :data:`LABEL_TEXTS`; descriptions come from the packaged description
    file (or ``label_embedding.descriptions_file``) for the ``actions`` table's dataset. The
    table's ``variant`` column holds the variant's ``name``."""
    from pose_zsl.text.embedders import build_label_embeddings

    text = variant["text"]
    if text not in LABEL_TEXTS:
        raise ValueError(
            f"parameter label_embedding.variants.*.text={text!r}: expected one of {LABEL_TEXTS}"
        )
    ordered = actions.sort_values("action_id")
    descriptions = None
    if text != "name":
        from pose_zsl.text.descriptions import action_table_descriptions

        descriptions = action_table_descriptions(ordered, params["descriptions_file"])
    embedder = params["embedder"]
    table = build_label_embeddings(
        ordered["action_name"].tolist(),
        embedder,
        embedder_options=_embedder_options(params, embedder),
        custom_texts=descriptions,
        templates=[] if text == "descriptions" else (params["templates"] or None),
        fallback=bool(params["sent2vec"]["fallback_to_default"]),
    )
    return table.assign(variant=pd.Series(name, index=table.index, dtype="string"))


def random_label_embeddings(learned: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The paper's ablation: seeded Gaussian vectors of the learned embedding's dimension."""
    from pose_zsl.text.embedders import label_embedding_table, make_embedder

    dim = int(learned["dim"].iloc[0])
    embedder = make_embedder("random", dim=dim, seed=int(params["random"]["seed"]))
    ordered = learned.sort_values("action_id")
    table = label_embedding_table(
        ordered["action_name"].tolist(), embedder, [list(t) for t in ordered["texts"]]
    )
    return table.assign(variant=pd.Series(RANDOM_EMBEDDING, index=table.index, dtype="string"))
