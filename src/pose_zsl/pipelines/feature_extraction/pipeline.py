from kedro.pipeline import Pipeline, node

from pose_zsl.grid import per_split

from .nodes import (
    extract_calibration_features,
    extract_repeat_calibration_features,
    extract_repeat_features,
    extract_split_features,
)


def create_pipeline(**kwargs) -> Pipeline:
    template = Pipeline(
        [
            node(
                extract_split_features,
                inputs=[
                    "stgcn_model",
                    "samples",
                    "sequences",
                    "split_classes",
                    "params:feature_extraction",
                ],
                outputs="features",
                name="extract_features",
                tags="gpu",
            ),
            node(
                extract_calibration_features,
                inputs=[
                    "calibration_stgcn_model",
                    "samples",
                    "sequences",
                    "split_classes",
                    "calibration_samples",
                    "params:feature_extraction",
                ],
                outputs="calibration_features",
                name="extract_calibration_features",
                tags="gpu",
            ),
            # the repeat backbones' features (zsl_training.repeat_backbone; empty when off)
            node(
                extract_repeat_features,
                inputs=[
                    "stgcn_repeat_models",
                    "samples",
                    "sequences",
                    "split_classes",
                    "params:feature_extraction",
                ],
                outputs="repeat_features",
                name="extract_repeat_features",
                tags="gpu",
            ),
            node(
                extract_repeat_calibration_features,
                inputs=[
                    "calibration_stgcn_repeat_models",
                    "samples",
                    "sequences",
                    "split_classes",
                    "calibration_samples",
                    "params:feature_extraction",
                ],
                outputs="repeat_calibration_features",
                name="extract_repeat_calibration_features",
                tags="gpu",
            ),
        ]
    )
    return per_split(template, "params:feature_extraction").tag("feature_extraction")
