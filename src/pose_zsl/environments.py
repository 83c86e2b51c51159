"""A Kedro environment's configuration read as ``kedro run --env`` reads it, for code outside
a session (the ``pose-zsl`` command, the grid before a session exists, benchmarks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
