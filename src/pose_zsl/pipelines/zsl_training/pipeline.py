from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node

from pose_zsl.grid import per_variant

from .nodes import (
    calibrate_head,
    effective_head_configs,
    head_curves,
    head_module,
    train_variant,
)


def head_template(head: str) -> Pipeline:
    """Train one head (and its repeats of further seeds), choose each one's calibration
    constant, log the head's curves and model."""
    return Pipeline(
        [
            node(
                # one training function for every head; the kind is bound per namespace
                update_wrapper(partial(train_variant, head), train_variant),
                inputs=[
                    "features",
                    "label_embeddings",
                    "split_classes",
                    "params:zsl_training",
                    "repeat_features",
                ],
                outputs=["zsl_model", "zsl_history", "zsl_repeat_models"],
                name=f"train_{head}",
            ),
            node(
                calibrate_head,
                inputs=[
                    "zsl_model",
                    "zsl_repeat_models",
                    "calibration_features",
                    "calibration_samples",
                    "label_embeddings",
                    "split_classes",
                    "params:zsl_training",
                    "repeat_calibration_features",
                ],
                outputs="calibration",
                name="calibrate_on_pseudo_unseen",
            ),
            node(head_curves, inputs="zsl_history", outputs="zsl_curves", name="head_curves"),
            node(
                head_module,
                inputs="zsl_model",
                outputs="zsl_mlflow_model",
                name="log_head_to_mlflow",
                tags="mlflow",
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    """One zero-shot head per variant, namespaced ``<split>.<head>.<embedding>``."""
    # one record of what every head of a kind trains with, after the preset
    effective = Pipeline(
        [
            node(
                effective_head_configs,
                inputs="params:zsl_training",
                outputs="effective_head_configs",
                name="resolve_head_configs",
            )
        ]
    )
    return (per_variant(head_template, "params:zsl_training") + effective).tag("zsl_training")
