"""The ``inference`` pipeline: new recordings + candidate names -> ranked predictions.

It reads the trained variant's catalog entries (the grid's default variant, see
:func:`pose_zsl.grid.default_variant`; ``nearest.relation_net.learned`` by default) and
is meant to run on its own (``kedro run --pipelines inference``), never as part of training.
:func:`create_serving_pipeline` is its prediction step alone, with one free input
(``inference_requests``) and one output, the shape kedro-mlflow's ``pipeline_ml_factory`` needs
to log it as an MLflow model at the end of a training run.
"""

from kedro.pipeline import Pipeline, node

from pose_zsl.grid import default_variant

from .nodes import predict_actions, read_inference_recordings


def create_serving_pipeline(
    split: str | None = None, head: str | None = None, embedding: str | None = None
) -> Pipeline:
    """``inference_requests`` (see :func:`pose_zsl.inference.requests_frame`) ->
    ``inference_predictions``, with the models of the variant ``split.head.embedding`` (each
    None: the default variant's)."""
    default = default_variant()
    split, head, embedding = (
        given or fallback for given, fallback in zip((split, head, embedding), default, strict=True)
    )
    variant = f"{split}.{head}.{embedding}"
    return Pipeline(
        [
            node(
                predict_actions,
                inputs=[
                    f"{split}.stgcn_model",
                    f"{variant}.zsl_model",
                    f"label_embeddings_{embedding}",
                    f"{variant}.calibration",
                    "inference_requests",
                    "params:inference",
                ],
                outputs="inference_predictions",
                name="predict_actions",
                tags="gpu",
            )
        ],
        tags="inference",
    )


def create_pipeline(
    split: str | None = None, head: str | None = None, embedding: str | None = None, **kwargs
) -> Pipeline:
    """Read ``params:inference`` recordings, then :func:`create_serving_pipeline`."""
    reading = Pipeline(
        [
            node(
                read_inference_recordings,
                inputs=[f"{split or default_variant()[0]}.stgcn_model", "params:inference"],
                outputs=["inference_requests", "inference_unreadable"],
                name="read_inference_recordings",
            )
        ],
        tags="inference",
    )
    return reading + create_serving_pipeline(split, head, embedding)
