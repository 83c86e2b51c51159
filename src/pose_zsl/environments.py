"""A Kedro environment's configuration read as ``kedro run --env`` reads it, for code outside
a session (the ``pose-zsl`` command, the grid before a session exists, benchmarks)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The ``raw_recordings`` catalog type whose folder the ingestion pipeline generates.
SYNTHETIC_SOURCE_TYPE = "pose_zsl.datasets.SyntheticSkeletonDataset"

#: Whether the active environment generates its raw recordings (key "synthetic"), set by
#: :func:`use_catalog` (the session's environment) or on first use (``KEDRO_ENV``).
_state: dict[str, bool] = {}


def unknown_environment(env: str | None, project: str | Path | None = None) -> str | None:
    """Why ``env`` names no environment of the project, or None (the default run environment
    may be absent: a fresh clone has no ``conf/local``)."""
    from pose_zsl.settings import CONFIG_LOADER_ARGS, PROJECT_ROOT

    conf = (Path(project) if project is not None else PROJECT_ROOT) / "conf"
    if env in (None, CONFIG_LOADER_ARGS["default_run_env"]) or (conf / env).is_dir():
        return None
    known = sorted(p.name for p in conf.iterdir() if p.is_dir() and p.name != "base")
    return (
        f"environment {env!r} does not exist (no folder {conf / env}); "
        f"environments: {', '.join(known)}"
    )


def config_loader(env: str | None, project: str | Path | None = None) -> Any:
    """The project's config loader for ``env`` (None: the default run environment) over the
    ``conf`` folder of ``project`` (default: this package's project)."""
    from kedro.config import OmegaConfigLoader

    from pose_zsl.settings import CONFIG_LOADER_ARGS, PROJECT_ROOT

    root = Path(project) if project is not None else PROJECT_ROOT
    return OmegaConfigLoader(conf_source=str(root / "conf"), env=env, **CONFIG_LOADER_ARGS)


def data_root(env: str | None, project: str | Path | None = None) -> Path:
    """Where ``env`` writes its tables, models and reports (``globals.yml``'s ``data_root``),
    relative to the project."""
    return Path(config_loader(env, project)["globals"]["data_root"])


def catalog_generates_synthetic(catalog: Mapping[str, Any]) -> bool:
    """Whether a resolved catalog configuration's ``raw_recordings`` is the synthetic source,
    whose files the ingestion pipeline's ``synthetic_recordings`` node writes (real data: never
    generated)."""
    entry = catalog.get("raw_recordings")
    return isinstance(entry, Mapping) and entry.get("type") == SYNTHETIC_SOURCE_TYPE


def generates_synthetic(env: str | None, project: str | Path | None = None) -> bool:
    """Whether environment ``env`` (None: the default run environment) generates its raw
    recordings, read from its catalog as ``kedro run --env`` reads it."""
    return catalog_generates_synthetic(config_loader(env, project)["catalog"])


def use_catalog(catalog: Mapping[str, Any]) -> bool:
    """Make the session's resolved catalog decide :func:`active_generates_synthetic`; True when
    that changed the answer (the pipelines built so far then need building again)."""
    synthetic = catalog_generates_synthetic(catalog)
    changed = _state.get("synthetic") != synthetic
    _state["synthetic"] = synthetic
    return changed


def active_generates_synthetic() -> bool:
    """Whether the active environment generates its raw recordings: the session's (set by a
    hook before the pipelines are built), else ``KEDRO_ENV``'s (default ``local``)."""
    if "synthetic" not in _state:
        _state["synthetic"] = generates_synthetic(os.environ.get("KEDRO_ENV"))
    return _state["synthetic"]
