from kedro.pipeline import Pipeline, node

from pose_zsl.grid import SPLITS

from .nodes import train_stgcn_on_seen_classes


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
            )
        ]
    )
    return sum(
        (
            Pipeline(
                template,
                namespace=split,
                inputs={"samples", "sequences"},
                parameters={"params:stgcn_training"},
            )
            for split in SPLITS
        ),
        Pipeline([]),
    ).tag("stgcn_training")
