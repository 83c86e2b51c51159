"""The experiment grid: which split x head x embedding variants the pipelines instantiate.

Variants are Kedro namespaces (``<split>.<head>.<embedding>``), generated here so the catalog
stays a handful of dataset factories. The grid's *shape* comes from the environment's
parameters, so a real dataset can evaluate as many splits and label-text variants as it names:

* splits: ``split_selection.splits``, a list of split rules (``nearest``, ``random_3``,
  ``msr_random_7``, ``ntu60_55_5``, ...), each its own namespace (a list, so an environment's
  list replaces the base one instead of merging with it);
* embeddings: the keys of ``label_embedding.variants`` (each a label-text choice for the
  learned encoder) followed by ``random``, the paper's ablation;
* heads: fixed (:data:`HEADS`).

Kedro builds pipelines once per process, after the session's context exists: the
:class:`GridHooks` hook reads the environment's parameters into the active grid before the
registry runs. Code that builds pipelines without a session (tests, notebooks) gets the grid of
``KEDRO_ENV`` (default ``local`` over ``base``), read through the same config loader.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

from kedro.pipeline import Pipeline

HEADS: tuple[str, ...] = ("devise", "relation_net", "infonce")
RANDOM_EMBEDDING = "random"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Grid:
    """The split slots and embedding variants of one environment (heads are fixed)."""

    splits: tuple[str, ...]
    embeddings: tuple[str, ...]
    heads: tuple[str, ...] = HEADS

    @property
    def learned_embeddings(self) -> tuple[str, ...]:
        return tuple(e for e in self.embeddings if e != RANDOM_EMBEDDING)

    def variants(self) -> list[tuple[str, str, str]]:
        """Every (split, head, embedding) combination."""
        return list(product(self.splits, self.heads, self.embeddings))


def _names(names: Any, parameter: str) -> tuple[str, ...]:
    if isinstance(names, str) or not names:
        raise ValueError(f"parameter {parameter} must be a non-empty list, got {names!r}")
    bad = [str(name) for name in names if not _NAME.match(str(name))]
    if bad:
        raise ValueError(
            f"parameter {parameter}: names {bad} are not lower-case identifiers "
            "(letters, digits, '_'; they become Kedro namespaces and file names)"
        )
    repeated = sorted({str(name) for name in names if list(names).count(name) > 1})
    if repeated:
        raise ValueError(f"parameter {parameter}: {repeated} listed more than once")
    return tuple(str(name) for name in names)


def grid_from_parameters(parameters: Mapping[str, Any]) -> Grid:
    """The grid an environment's resolved parameters describe."""
    splits = _names(parameters["split_selection"]["splits"], "split_selection.splits")
    learned = _names(parameters["label_embedding"]["variants"], "label_embedding.variants")
    if RANDOM_EMBEDDING in learned:
        raise ValueError(
            f"parameter label_embedding.variants: {RANDOM_EMBEDDING!r} is reserved for the "
            "random-embedding ablation, which every grid has"
        )
    return Grid(splits=splits, embeddings=(*learned, RANDOM_EMBEDDING))


#: The process's active grid (key "grid"), set by :func:`use_parameters` or on first use.
_state: dict[str, Grid] = {}


def use_parameters(parameters: Mapping[str, Any]) -> bool:
    """Make the grid of ``parameters`` the active one; True when that changed it."""
    grid = grid_from_parameters(parameters)
    changed = grid != _state.get("grid")
    _state["grid"] = grid
    return changed


def environment_grid(env: str | None) -> Grid:
    """The grid of environment ``env`` (None: ``local``), read through the project's config
    loader as ``kedro run --env`` reads it."""
    from pose_zsl.environments import config_loader

    return grid_from_parameters(config_loader(env)["parameters"])


def active() -> Grid:
    """The active grid: the session's environment, else ``KEDRO_ENV`` (default ``local``)."""
    if "grid" not in _state:
        _state["grid"] = environment_grid(os.environ.get("KEDRO_ENV"))
    return _state["grid"]


def variants() -> list[tuple[str, str, str]]:
    """Every (split, head, embedding) combination of the active grid."""
    return active().variants()


def default_variant(head: str = "relation_net") -> tuple[str, str, str]:
    """The variant that model export and the inference pipeline use: the first split slot and
    the first learned embedding of the active grid, with ``head`` (the paper's Relation Net)."""
    grid = active()
    return grid.splits[0], head, grid.learned_embeddings[0]


def variant_key(split: str, head: str, embedding: str) -> str:
    """An identifier-safe key for one variant (used as a node keyword argument)."""
    return f"{split}__{head}__{embedding}"


#: The repeat settings that the per-split ST-GCN and feature nodes read from their one home,
#: ``zsl_training`` (:mod:`pose_zsl.zsl.repeats`).
REPEAT_PARAMETERS = ("params:zsl_training.repeats", "params:zsl_training.repeat_backbone")


def per_split(template: Pipeline, *parameters: str) -> Pipeline:
    """One copy of ``template`` per split slot, namespaced by the slot; the ``samples`` and
    ``sequences`` tables and the ``parameters`` entries are shared by every copy (those the
    template does not read are left out)."""
    used = template.inputs()
    copies = (
        Pipeline(
            template,
            namespace=split,
            inputs={"samples", "sequences"},
            parameters={p for p in parameters if p in used},
        )
        for split in active().splits
    )
    return sum(copies, Pipeline([]))


def per_variant(template_for_head: Callable[[str], Pipeline], parameters: str) -> Pipeline:
    """One copy of the head's template per variant, namespaced ``<split>.<head>.<embedding>``,
    reading its split's features and classes, the variant's label embeddings and, where the
    template reads them, its split's calibration samples, calibration features and the repeat
    backbones' features (:mod:`pose_zsl.zsl.repeats`)."""

    def split_inputs(template: Pipeline, split: str, embedding: str) -> dict[str, str]:
        optional = {
            "calibration_samples": f"{split}.calibration_samples",
            "calibration_features": f"{split}.calibration_features",
            "repeat_features": f"{split}.repeat_features",
            "repeat_calibration_features": f"{split}.repeat_calibration_features",
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
