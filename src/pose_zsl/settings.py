"""Kedro project settings."""

import warnings
from pathlib import Path

from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

from pose_zsl.hooks import (
    EffectiveConfigParamsHooks,
    EntryPointHooks,
    GridHooks,
    MlflowRunNameHooks,
    ModelMetricsHooks,
    RankZeroWritesHooks,
    RunSummaryHooks,
    process_rank,
)

# The collecting nodes (evaluation's collect_metrics, ...) read every split's namespaced
# datasets ("<split>.features") by design; Kedro warns about that once per run, to no use.
warnings.filterwarnings("ignore", message="One or more dataset names contain '.'")
# Kedro's config loader calls OmegaConf's deprecated register_new_resolver: three warnings per
# run about another package's code that a user cannot act on.
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated")

HOOKS = (
    EntryPointHooks(),
    GridHooks(),
    RankZeroWritesHooks(),
    MlflowRunNameHooks(),
    EffectiveConfigParamsHooks(),
    RunSummaryHooks(),
    # registered last so that pluggy calls it before RunSummaryHooks: the summary ends the run
    ModelMetricsHooks(),
)
# Under torchrun only rank 0 tracks the run in MLflow.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow") if process_rank() != 0 else ()

#: The project root (``src/pose_zsl/settings.py`` -> three levels up); stores such as the
#: MLflow database are anchored here, not at whatever directory ``kedro`` was started from.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _project_path(relative: str) -> str:
    return str(PROJECT_ROOT / relative)


def _mlflow_artifact_location(tracking_uri: str) -> str | None:
    """Artefacts beside an SQLite store's database; None (the store's own default, e.g. a
    server's proxied ``mlflow-artifacts:/``) for any other store."""
    if tracking_uri.startswith("sqlite:///"):
        database = PROJECT_ROOT / tracking_uri.removeprefix("sqlite:///")
        return str(database.parent / "mlartifacts")
    return None


CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # oc.env (off by default outside credentials) lets data folders and the MLflow store be
    # chosen by environment variables: NTU60_SKELETON_DIR, MLFLOW_TRACKING_URI, ...
    "custom_resolvers": {
        "project_path": _project_path,
        "mlflow_artifact_location": _mlflow_artifact_location,
        "oc.env": oc.env,
    },
    # environments override single parameters (deep merge); catalog entries are replaced whole
    "merge_strategy": {"parameters": "soft"},
}
