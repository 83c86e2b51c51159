"""The ``model_export`` pipeline: one trained variant (by default the grid's first split, the
Relation Net and the first learned embedding: ``nearest.relation_net.learned`` in the default
environment, what ``pose-zsl predict`` uses) as an MLflow pyfunc model, saved under
``data/06_models`` and logged in the training run.

It reads only training outputs (ST-GCN, head, label embeddings, calibration), never the
evaluation results: which variant ships is a configuration choice, not a selection on unseen
classes.
"""

from kedro.pipeline import Pipeline, node

from pose_zsl.grid import default_variant

from .nodes import package_predictor


def create_pipeline(**kwargs) -> Pipeline:
    split, head, embedding = default_variant()
    variant = f"{split}.{head}.{embedding}"
    return Pipeline(
        [
            node(
                package_predictor,
                inputs=[
                    f"{split}.stgcn_model",
                    f"{variant}.zsl_model",
                    f"label_embeddings_{embedding}",
                    f"{variant}.calibration",
                    "params:model_export",
                ],
                outputs="zero_shot_predictor",
                name="package_predictor",
            )
        ],
        tags="model_export",
    )
