from kedro.pipeline import Pipeline, node

from pose_zsl.grid import REPEAT_PARAMETERS, per_split

from .nodes import (
    effective_stgcn_config,
    stgcn_module,
    train_calibration_stgcn,
    train_repeat_calibration_stgcns,
    train_repeat_stgcns,
    train_stgcn_on_seen_classes,
    training_curves,
)


def create_pipeline(**kwargs) -> Pipeline:
    """One ST-GCN per split: each may only ever see its own split's seen classes."""
    template = Pipeline(
        [
            node(
                train_stgcn_on_seen_classes,
                inputs=["samples", "sequences", "split_classes", "params:stgcn_training"],
                outputs=["stgcn_model", "stgcn_history"],
                name="train_stgcn",
                tags="gpu",
            ),
            node(
                train_calibration_stgcn,
                inputs=[
                    "samples",
                    "sequences",
                    "split_classes",
                    "calibration_samples",
                    "params:stgcn_training",
                ],
                outputs=["calibration_stgcn_model", "calibration_stgcn_history"],
                name="train_calibration_stgcn",
                tags="gpu",
            ),
            # zsl_training.repeat_backbone: the backbones of repeats 1 .. N-1 (nothing when off)
            node(
                train_repeat_stgcns,
                inputs=[
                    "samples",
                    "sequences",
                    "split_classes",
                    "params:stgcn_training",
                    *REPEAT_PARAMETERS,
                ],
                outputs=["stgcn_repeat_models", "stgcn_repeat_history"],
                name="train_repeat_stgcns",
                tags="gpu",
            ),
            node(
                train_repeat_calibration_stgcns,
                inputs=[
                    "samples",
                    "sequences",
                    "split_classes",
                    "calibration_samples",
                    "params:stgcn_training",
                    *REPEAT_PARAMETERS,
                ],
                outputs=["calibration_stgcn_repeat_models", "calibration_stgcn_repeat_history"],
                name="train_repeat_calibration_stgcns",
                tags="gpu",
            ),
            node(
                training_curves,
                inputs=["stgcn_history", "split_classes"],
                outputs=["stgcn_curves", "stgcn_training_curve"],
                name="stgcn_training_curves",
            ),
            node(
                stgcn_module,
                inputs="stgcn_model",
                outputs="stgcn_mlflow_model",
                name="log_stgcn_to_mlflow",
                tags="mlflow",
            ),
        ]
    )
    # one record of what every split trains with, after the preset (not per split: one config)
    effective = Pipeline(
        [
            node(
                effective_stgcn_config,
                inputs="params:stgcn_training",
                outputs="effective_stgcn_config",
                name="resolve_stgcn_config",
            )
        ]
    )
    split = per_split(template, "params:stgcn_training", *REPEAT_PARAMETERS)
    return (split + effective).tag("stgcn_training")
