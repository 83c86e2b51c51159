"""Project hooks."""

from __future__ import annotations

import logging
import os
from typing import Any

import pandas as pd
from kedro.framework.hooks import hook_impl
from kedro.io import MemoryDataset

logger = logging.getLogger(__name__)


def process_rank() -> int:
    """This process's rank in a ``torchrun`` launch (0 when not launched that way)."""
    return int(os.environ.get("RANK", "0"))


class RankZeroWritesHooks:
    """Under ``torchrun`` every rank runs the pipeline; only rank 0 writes datasets and logs.

    On the other ranks every pipeline output is swapped for an in-memory dataset, so nodes
    still pass data to each other but nothing reaches the disk or MLflow twice.
    """

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        if process_rank() != 0:
            logging.getLogger("kedro").setLevel(logging.WARNING)

    @hook_impl
    def before_pipeline_run(self, run_params: dict, pipeline: Any, catalog: Any) -> None:
        if process_rank() != 0:
            for name in pipeline.all_outputs():
                catalog[name] = MemoryDataset(copy_mode="assign")


class EntryPointHooks:
    """Stops a run with a misspelt environment or pipeline before anything else reads its
    configuration (kedro-mlflow would otherwise fail on a default MLflow store, and Kedro's
    pipeline discovery on an import), naming the value and listing the valid ones.

    The error is a ``click.ClickException``: under ``kedro run`` it prints one line and exits
    with status 1; from Python it is an ordinary exception.
    """

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        import click
        from kedro.framework.project import pipelines

        from pose_zsl.environments import unknown_environment

        problem = unknown_environment(context.env, context.project_path) or unknown_pipelines(
            getattr(pipelines, "_requested_pipelines", None)
        )
        if problem:
            raise click.ClickException(problem)

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict, pipeline: Any, catalog: Any) -> None:
        """A raw-recordings folder that is missing or empty stops the run before any node,
        naming the folder and the setting it came from."""
        import click
        from kedro.io import DatasetError

        from pose_zsl.datasets import PooledSourceDataset, SkeletonSourceDataset

        # a pipeline with the synthetic_recordings node writes raw_recordings itself
        if "raw_recordings" not in pipeline.inputs():
            return
        source = catalog.get("raw_recordings")
        if isinstance(source, (SkeletonSourceDataset, PooledSourceDataset)):
            try:
                source.load()
            except DatasetError as error:
                raise click.ClickException(str(error)) from error


def unknown_pipelines(requested: list[str] | None) -> str | None:
    """Why ``kedro run --pipelines`` names a pipeline the project does not register, or None
    (the registry's names, known without building a pipeline)."""
    from pose_zsl.pipeline_registry import pipeline_names

    registered = pipeline_names()
    unknown = [name for name in requested or [] if name not in registered]
    if not unknown:
        return None
    return (
        f"unknown pipeline{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
        f"registered pipelines: {', '.join(sorted(registered))}"
    )


class GridHooks:
    """Sets the experiment grid (split slots, embedding variants) from the environment's
    parameters, and whether its raw recordings are generated (the synthetic source) from its
    catalog, before Kedro builds the pipelines: ``--env`` decides how many splits run and
    whether ingestion has the generator node.

    Pipelines are built once per process; when a later session in the same process resolves a
    different grid or source, the cached pipelines are dropped so they are rebuilt for it.
    """

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        from kedro.framework.project import pipelines

        from pose_zsl import environments, grid

        grid_changed = grid.use_parameters(context.config_loader["parameters"])
        source_changed = environments.use_catalog(context.config_loader["catalog"])
        if grid_changed or source_changed:
            # Kedro offers no public "rebuild"; configure() with the same module resets the
            # cache, and the requested-pipelines filter of this run is put back
            requested = getattr(pipelines, "_requested_pipelines", None)
            pipelines.configure(getattr(pipelines, "_pipelines_module", None))
            pipelines.set_requested(requested)


#: MLflow 3's UI opens an experiment on the view its kind names; without the tag it guesses
#: and may open the GenAI overview. This project's runs are model training.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"


class MlflowRunNameHooks:
    """Names kedro-mlflow's run ``<pipelines> @ <environment>`` (``__default__ @ ntu60``), so
    runs of one pipeline on different datasets are told apart in the MLflow UI's run list, and
    marks the experiment as model training (:data:`EXPERIMENT_KIND_TAG`) so the UI opens on
    its runs.

    Runs after kedro-mlflow has started the run; a run name set in ``mlflow.yml`` (or a run
    that was already active with its own name) is kept.
    """

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params: dict, pipeline: Any, catalog: Any) -> None:
        import mlflow

        run = mlflow.active_run()
        if run is None:
            return
        client = mlflow.MlflowClient()
        experiment = client.get_experiment(run.info.experiment_id)
        if experiment.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING_KIND:
            client.set_experiment_tag(
                experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND
            )
        pipelines = "+".join(run_params.get("pipeline_names") or ["__default__"])
        if run.info.run_name != pipelines:
            return
        environment = run_params.get("env") or "local"
        mlflow.set_tag("mlflow.runName", f"{pipelines} @ {environment}")


class EffectiveConfigParamsHooks:
    """Logs the effective training configs (presets with their overrides) as MLflow parameters
    ``effective_stgcn_config.<field>`` and ``effective_head_configs.<head>.<field>``, beside
    kedro-mlflow's raw ``stgcn_training.*`` / ``zsl_training.*``: the raw ones show only what
    the YAML overrides, not the epochs or learning rates a preset supplies. The full configs
    are also JSON artefacts (catalog entries of the same names).

    Logs only into a run kedro-mlflow started (none under torchrun ranks other than 0, none for
    untracked pipelines).
    """

    DATASETS = ("effective_stgcn_config", "effective_head_configs")

    @hook_impl
    def after_node_run(self, node: Any, outputs: dict[str, Any]) -> None:
        import mlflow

        if mlflow.active_run() is None:
            return
        for name in self.DATASETS:
            if name in outputs:
                mlflow.log_params(_flatten(outputs[name], f"{name}."))


def _flatten(values: dict[str, Any], prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class RunSummaryHooks:
    """Ends a ``kedro run`` by saying what it made and where: the reports and models of the
    environment's data root, the MLflow run and how to open it, and the next command.

    Runs before kedro-mlflow closes the run (``tryfirst``), so the run id is still active.
    """

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self, run_params: dict, pipeline: Any, catalog: Any) -> None:
        if process_rank() != 0:
            return
        print(run_summary(run_params, set(pipeline.all_outputs())), flush=True)


def run_summary(run_params: dict, outputs: set[str]) -> str:
    """The lines :class:`RunSummaryHooks` prints for a run that made ``outputs``."""
    import mlflow

    from pose_zsl.environments import data_root

    env = run_params.get("env")
    root = data_root(env, run_params.get("project_path"))
    option = f" --env {env}" if env else ""
    lines = [f"pose-zsl: finished {'+'.join(run_params.get('pipeline_names') or ['__default__'])}"
             f" @ {env or 'local'}"]  # fmt: skip
    if "zsl_top1_table" in outputs:
        lines.append(
            f"  results: {root / '08_reporting' / 'zsl_top1.md'} (ZSL top-1), over_splits.md "
            "(means over splits with intervals), gzsl_seen_unseen.md, metrics.parquet"
        )
    if "html_report" in outputs:
        lines.append(f"  report:  {root / '08_reporting' / 'report.html'} (open in a browser)")
    if "zero_shot_predictor" in outputs:
        lines.append(f"  models:  {root / '06_models'} (zero_shot_predictor: the exported model)")
    run = mlflow.active_run()
    if run is not None:
        run = mlflow.get_run(run.info.run_id)  # the active run object keeps its first name
        lines.append(
            f"  MLflow:  run {run.info.run_id} ({run.info.run_name}); browse with "
            f"`.venv/bin/mlflow ui --backend-store-uri {mlflow.get_tracking_uri()}`"
        )
    if "zero_shot_predictor" in outputs:
        lines.append(
            f'  next:    .venv/bin/pose-zsl predict RECORDINGS... --labels "wave, kick a ball"'
            f"{option}"
        )
    return "\n".join(lines)


class ModelMetricsHooks:
    """Links each model logged in the run to its own evaluation metrics, so that its MLflow
    model page shows them: a head (``zsl_<slot>_<head>_<embedding>``) and the exported
    ``zero_shot_predictor`` their variant's, an ST-GCN (``stgcn_<slot>``) its split's
    ``vanilla_stgcn`` rows.

    Models are logged at step -1 (catalog ``save_args``), where no metric is, because MLflow
    otherwise links every unattributed metric of the model's step (the first epoch of every
    training curve) to every model of the run.
    """

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self, run_params: dict, pipeline: Any, catalog: Any) -> None:
        import mlflow

        run = mlflow.active_run()
        if process_rank() != 0 or run is None or "metrics" not in pipeline.all_outputs():
            return
        models = mlflow.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run.info.run_id}'",
            output_format="list",
        )
        links = model_metric_links(catalog.load("metrics"), {m.name: m.model_id for m in models})
        for model_id, values in links.items():
            for key, value in values.items():
                mlflow.log_metric(key, value, step=0, model_id=model_id)
        logger.info("linked evaluation metrics to %d logged models", len(links))


def model_metric_links(
    metrics: pd.DataFrame, model_ids: dict[str, str]
) -> dict[str, dict[str, float]]:
    """``{model_id: {metric key: value}}``: each named model's own rows of ``metrics`` (the
    first seed's, under the keys the run logs them with). Models of no known variant get none."""
    from pose_zsl.grid import default_variant
    from pose_zsl.reporting import mlflow_metric_values

    variant = ["slot", "head", "embedding"]
    first_seed = metrics[metrics["seed"] == metrics.groupby(variant)["seed"].transform("min")]
    owners = {"zero_shot_predictor": default_variant()}
    for slot, head, embedding in first_seed[variant].drop_duplicates().itertuples(index=False):
        name = f"stgcn_{slot}" if head == "vanilla_stgcn" else f"zsl_{slot}_{head}_{embedding}"
        owners[name] = (slot, head, embedding)
    links = {}
    for name, model_id in model_ids.items():
        if name in owners:
            own = (first_seed[variant] == list(owners[name])).all(axis=1)
            values = mlflow_metric_values(first_seed[own])
            links[model_id] = {key: point["value"] for key, point in values.items()}
    return links
