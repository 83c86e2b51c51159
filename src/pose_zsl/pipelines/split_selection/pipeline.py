from kedro.pipeline import Pipeline, node

from pose_zsl.grid import SPLITS

from .nodes import partition_calibration_samples, select_splits


def create_pipeline(**kwargs) -> Pipeline:
    outputs = {"splits": "splits", "split_report": "split_report"}
    outputs |= {split: f"{split}.split_classes" for split in SPLITS}
    return Pipeline(
        [
            node(
                select_splits,
                inputs=["label_embeddings_learned", "samples", "params:split_selection"],
                outputs=outputs,
                name="select_splits",
            ),
            node(
                partition_calibration_samples,
                inputs=["splits", "samples", "params:split_selection"],
                outputs={split: f"{split}.calibration_samples" for split in SPLITS},
                name="partition_calibration_samples",
            ),
        ],
        tags="split_selection",
    )
