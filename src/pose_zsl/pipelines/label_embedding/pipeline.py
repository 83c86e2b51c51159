from kedro.pipeline import Pipeline, node

from .nodes import embed_action_labels, random_label_embeddings


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                embed_action_labels,
                inputs=["actions", "params:label_embedding"],
                outputs="label_embeddings_learned",
                name="embed_action_labels",
            ),
            node(
                random_label_embeddings,
                inputs=["label_embeddings_learned", "params:label_embedding"],
                outputs="label_embeddings_random",
                name="random_label_embeddings",
            ),
        ],
        tags="label_embedding",
    )
