"""Project pipelines."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

#: Pipelines run only when named (``kedro run --pipelines inference``), not by ``kedro run``.
ON_DEMAND = frozenset({"inference"})


def register_pipelines() -> dict[str, Pipeline]:
    """Every pipeline under ``pipelines/``; ``__default__`` is the union of the training ones."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (pipeline for name, pipeline in pipelines.items() if name not in ON_DEMAND), Pipeline([])
    )
    return pipelines
