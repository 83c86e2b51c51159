"""The experiment grid: which split x head x embedding variants the pipelines instantiate.

Variants are Kedro namespaces (``<split>.<head>.<embedding>``), generated here once so the
catalog stays a handful of dataset factories. The split *rules* behind each split slot come
from ``parameters_split_selection.yml`` (a slot can be re-pointed at any rule or benchmark
split per environment); the slot names are fixed so the DAG is the same in every environment.
"""

from collections.abc import Callable
from itertools import product

from kedro.pipeline import Pipeline

SPLITS: tuple[str, ...] = ("nearest", "random", "furthest")
HEADS: tuple[str, ...] = ("devise", "relation_net", "infonce")
EMBEDDINGS: tuple[str, ...] = ("learned", "random")


def variants() -> list[tuple[str, str, str]]:
    """Every (split, head, embedding) combination of the grid."""
    return list(product(SPLITS, HEADS, EMBEDDINGS))


def variant_key(split: str, head: str, embedding: str) -> str:
    """An identifier-safe key for one variant (used as a node keyword argument)."""
    return f"{split}__{head}__{embedding}"


def per_split(template: Pipeline, parameters: str) -> Pipeline:
    """One copy of ``template`` per split slot, namespaced by the slot; the ``samples`` and
    ``sequences`` tables and the ``parameters`` entry are shared by every copy."""
    copies = (
        Pipeline(
            template,
            namespace=split,
            inputs={"samples", "sequences"},
            parameters={parameters},
        )
        for split in SPLITS
    )
    return sum(copies, Pipeline([]))


def per_variant(template_for_head: Callable[[str], Pipeline], parameters: str) -> Pipeline:
    """One copy of the head's template per variant, namespaced ``<split>.<head>.<embedding>``,
    reading its split's features and classes, the variant's label embeddings and, where the
    template reads them, its split's calibration samples and calibration features."""

    def split_inputs(template: Pipeline, split: str, embedding: str) -> dict[str, str]:
        optional = {
            "calibration_samples": f"{split}.calibration_samples",
            "calibration_features": f"{split}.calibration_features",
        }
        return {
            "features": f"{split}.features",
            "split_classes": f"{split}.split_classes",
            "label_embeddings": f"label_embeddings_{embedding}",
            **{name: full for name, full in optional.items() if name in template.inputs()},
        }

    copies = (
        Pipeline(
            template,
            namespace=f"{split}.{head}.{embedding}",
            inputs=split_inputs(template, split, embedding),
            parameters={parameters},
        )
        for split, head, embedding in variants()
        for template in [template_for_head(head)]
    )
    return sum(copies, Pipeline([]))
