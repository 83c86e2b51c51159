from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node

from pose_zsl.grid import RANDOM_EMBEDDING, active

from .nodes import embed_action_labels, random_label_embeddings


def create_pipeline(**kwargs) -> Pipeline:
    """One label-embedding table per learned variant of the grid, and the random ablation
    (vectors of the first learned variant's dimension)."""
    learned = active().learned_embeddings
    embedded = [
        node(
            update_wrapper(partial(embed_action_labels, name=variant), embed_action_labels),
            inputs=[
                "actions",
                "params:label_embedding",
                f"params:label_embedding.variants.{variant}",
            ],
            outputs=f"label_embeddings_{variant}",
            name=f"embed_action_labels_{variant}",
        )
        for variant in learned
    ]
    ablation = node(
        random_label_embeddings,
        inputs=[f"label_embeddings_{learned[0]}", "params:label_embedding"],
        outputs=f"label_embeddings_{RANDOM_EMBEDDING}",
        name="random_label_embeddings",
    )
    return Pipeline([*embedded, ablation], tags="label_embedding")
