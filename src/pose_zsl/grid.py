"""The experiment grid: which split x head x embedding variants the pipelines instantiate.

Variants are Kedro namespaces (``<split>.<head>.<embedding>``), generated here once so the
catalog stays a handful of dataset factories. The split *rules* behind each split slot come
from ``parameters_split_selection.yml`` (a slot can be re-pointed at any rule or benchmark
split per environment); the slot names are fixed so the DAG is the same in every environment.
"""

from itertools import product

SPLITS: tuple[str, ...] = ("nearest", "random", "furthest")
HEADS: tuple[str, ...] = ("devise", "relation_net", "infonce")
EMBEDDINGS: tuple[str, ...] = ("learned", "random")


def variants() -> list[tuple[str, str, str]]:
    """Every (split, head, embedding) combination of the grid."""
    return list(product(SPLITS, HEADS, EMBEDDINGS))


def variant_key(split: str, head: str, embedding: str) -> str:
    """An identifier-safe key for one variant (used as a node keyword argument)."""
    return f"{split}__{head}__{embedding}"
