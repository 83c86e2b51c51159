"""Project pipelines."""

from pathlib import Path

from kedro.framework.project import find_pipelines
from kedro.pipeline import Node, Pipeline

from pose_zsl.grid import active, default_variant

#: Pipelines run only when named (``kedro run --pipelines inference``), not by ``kedro run``.
ON_DEMAND = frozenset({"inference"})
#: Pipelines :func:`register_pipelines` composes from the others.
COMPOSED = ("__default__", "one_variant")


def pipeline_names() -> set[str]:
    """The names :func:`register_pipelines` registers, without building any pipeline: one per
    sub-package of ``pose_zsl.pipelines`` (what ``find_pipelines`` finds) and the composed."""
    import pose_zsl.pipelines

    folder = Path(pose_zsl.pipelines.__file__).parent
    found = {p.name for p in folder.iterdir() if (p / "pipeline.py").is_file()}
    return found | set(COMPOSED)


def register_pipelines() -> dict[str, Pipeline]:
    """Every pipeline under ``pipelines/``; ``__default__`` is the union of the training ones;
    ``one_variant`` is the default chain for a single variant."""
    pipelines = _find_all_pipelines()
    pipelines["__default__"] = sum(
        (pipeline for name, pipeline in pipelines.items() if name not in ON_DEMAND), Pipeline([])
    )
    pipelines["one_variant"] = one_variant(pipelines["__default__"])
    return pipelines


def _find_all_pipelines() -> dict[str, Pipeline]:
    """Every pipeline package, whatever ``--pipelines`` asked for: Kedro 1.x's
    ``find_pipelines`` imports only the requested names' packages, and the composed pipelines
    (``one_variant``) have none but need all the others."""
    from kedro.framework.project import pipelines as registry

    # not registry.set_requested(None): this runs inside the registry's own loading, under its
    # lock, and set_requested would also drop the cache being filled
    requested = registry._requested_pipelines
    registry._requested_pipelines = None
    try:
        return find_pipelines(raise_errors=True)
    finally:
        registry._requested_pipelines = requested


def one_variant(default: Pipeline) -> Pipeline:
    """Every stage of ``default`` once: for the export's variant (its split slot, head and
    embedding), without the nodes that collect over the whole grid (metrics tables, report).

    The full grid draws several hundred datasets in kedro-viz; this chain is what a newcomer
    can read (``make viz``), and ``kedro run --pipelines one_variant`` trains and exports that
    one variant.
    """
    split, head, embedding = default_variant()
    other_slots = {f"{slot}." for slot in active().splits if slot != split}
    other_variants = {
        f"{split}.{other_head}.{other_embedding}."
        for _, other_head, other_embedding in active().variants()
        if (other_head, other_embedding) != (head, embedding)
    }
    elsewhere = tuple(other_slots | other_variants)

    def touches_elsewhere(node: Node) -> bool:
        return any(name.startswith(elsewhere) for name in (node.name, *node.inputs))

    def feeds_only_other_variants(node: Node) -> bool:  # e.g. the random label embeddings
        consumers = [other for other in default.nodes if set(node.outputs) & set(other.inputs)]
        return bool(consumers) and all(other.name.startswith(elsewhere) for other in consumers)

    collecting = [node.name for node in default.nodes if touches_elsewhere(node)]
    chain = default - default.from_nodes(*collecting)
    return Pipeline([node for node in chain.nodes if not feeds_only_other_variants(node)])
