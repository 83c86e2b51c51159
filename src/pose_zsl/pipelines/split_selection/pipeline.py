from kedro.pipeline import Pipeline, node

from pose_zsl.grid import active

from .nodes import partition_calibration_samples, select_splits


def create_pipeline(**kwargs) -> Pipeline:
    splits, learned = active().splits, active().learned_embeddings
    outputs = {"splits": "splits", "split_report": "split_report"}
    outputs |= {split: f"{split}.split_classes" for split in splits}
    return Pipeline(
        [
            node(
                select_splits,
                inputs=[
                    f"label_embeddings_{learned[0]}",
                    "samples",
                    "actions",
                    "params:split_selection",
                ],
                outputs=outputs,
                name="select_splits",
            ),
            node(
                partition_calibration_samples,
                inputs=["splits", "samples", "params:split_selection"],
                outputs={split: f"{split}.calibration_samples" for split in splits},
                name="partition_calibration_samples",
            ),
        ],
        tags="split_selection",
    )
