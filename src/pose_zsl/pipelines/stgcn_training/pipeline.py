from kedro.pipeline import Pipeline, node

from pose_zsl.grid import per_split

from .nodes import stgcn_module, train_stgcn_on_seen_classes, training_curves


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
                training_curves,
                inputs="stgcn_history",
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
    return per_split(template, "params:stgcn_training").tag("stgcn_training")
