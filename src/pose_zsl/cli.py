"""``pose-zsl``: the project's console command.

``pose-zsl predict RECORDINGS... --labels "put on a hat, kick a ball, wave"`` ranks free-text
action names for skeleton recordings with a trained zero-shot variant, prints a ranked table
and optionally writes it (``--output out.parquet`` or ``out.csv``). ``--calibration`` sets the
constant subtracted from training classes' scores: ``auto`` (the model's; with every class name
as a candidate the ranking is the evaluation's calibrated GZSL), ``off`` or a number.
``--adapt-layout auto`` (the default) reads a recording of another skeleton layout as the
model's when an adapter exists (an NTU / Kinect v2 recording for a Kinect v1 model, see
:mod:`pose_zsl.skeleton.adapt`) and says so on stderr; ``off`` skips such recordings.

Exit status: 0 when every recording was predicted; 3 when some were and others were skipped
(each skipped one is reported on stderr and, with ``--output``, written as a row with rank 0,
no label and the reason in ``error``); 1 when nothing could be predicted (the error rows are
still written) or the models are missing or unusable; 2 for bad arguments (no or duplicate
labels, a bad ``--top-k``, ``--calibration`` or ``--adapt-layout``, an unknown output format).

Kedro loads ``<package>.cli`` for project commands and requires a click group named ``cli``
in it: :data:`cli` provides ``kedro predict ...``, the same command. Heavy imports stay inside
functions, since every ``kedro`` invocation imports this module.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import pandas as pd

    from pose_zsl.inference import CandidateNames, ZeroShotPredictor

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
OUTPUT_FORMATS = (".parquet", ".csv")

logger = logging.getLogger("pose_zsl.cli")


class UsageError(ValueError):
    """A bad command-line argument (exit status 2)."""


def predict_command() -> click.Command:
    """The ``predict`` command, built when first used (its defaults come from the inference
    module, which imports torch: every ``kedro`` call imports this module)."""
    from pose_zsl.grid import HEADS
    from pose_zsl.inference import (
        ADAPT_LAYOUT_CHOICES,
        DEFAULT_ADAPT_LAYOUT,
        DEFAULT_CALIBRATION,
        DEFAULT_HEAD,
        DEFAULT_TOP_K,
    )

    variant = "the trained variant to use"
    options = [
        click.Argument(["recordings"], nargs=-1, required=True),
        click.Option(
            ["--labels"],
            multiple=True,
            help='comma-separated candidate names, e.g. "put on a hat, kick a ball" (repeatable)',
        ),
        click.Option(
            ["--labels-file"],
            type=click.Path(path_type=Path),
            help="a file with one candidate name per line",
        ),
        click.Option(["--top-k"], type=int, default=DEFAULT_TOP_K, show_default=True,
                     help="names per recording"),
        click.Option(
            ["--calibration"],
            default=DEFAULT_CALIBRATION,
            show_default=True,
            help="constant subtracted from the scores of training (seen) classes: auto (the "
            "model's, chosen on seen classes by the zsl_training pipeline), off (raw scores) "
            "or a number",
        ),
        click.Option(
            ["--adapt-layout"],
            default=DEFAULT_ADAPT_LAYOUT,
            show_default=True,
            type=click.Choice(ADAPT_LAYOUT_CHOICES),
            help="a recording of another skeleton layout than the model's: auto reads it joint "
            "by joint as the model's layout when an adapter exists (NTU/Kinect v2 recordings "
            "for a Kinect v1 model), off skips it",
        ),
        click.Option(
            ["--env"],
            envvar="KEDRO_ENV",
            help="the Kedro environment whose models to use (its data root, "
            "conf/<env>/globals.yml, and its splits; default $KEDRO_ENV, else local)",
        ),
        click.Option(["--split"], help=f"{variant} (default: the environment's first split)"),
        click.Option(["--head"], default=DEFAULT_HEAD, show_default=True,
                     type=click.Choice(HEADS), help=variant),
        click.Option(
            ["--embedding"], help=f"{variant} (default: the environment's first learned one)"
        ),
        click.Option(
            ["--model-uri"], help="an MLflow model URI (models:/NAME/VERSION, runs:/RUN/PATH, ...)"
        ),
        click.Option(["--run-id"], help="an MLflow run that logged the predictor"),
        click.Option(
            ["--model-name"],
            default="zero_shot_predictor",
            show_default=True,
            help="the model's name inside the run (with --run-id)",
        ),
        click.Option(
            ["--tracking-uri"],
            help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the project's "
            "mlflow.db)",
        ),
        click.Option(["--output"], type=click.Path(path_type=Path),
                     help="write the table to .parquet or .csv"),
        click.Option(
            ["--project"],
            type=click.Path(path_type=Path),
            help="the Kedro project (default: found from the current folder)",
        ),
        click.Option(["--device"], default="cpu", show_default=True, help="cpu, cuda or auto"),
        click.Option(["--batch-size"], type=int, default=64, show_default=True,
                     help="recordings per batch"),
        click.Option(["--no-denoise"], is_flag=True,
                     help="keep NTU bodies as tracked (no denoising)"),
        click.Option(["-v", "--verbose"], is_flag=True, help="log progress"),
    ]  # fmt: skip
    return click.Command(
        "predict",
        callback=lambda **args: run_predict(SimpleNamespace(**args)),
        params=options,
        help="Rank candidate action names (any free text, training classes or new ones) for "
        "each recording. RECORDINGS: NTU .skeleton files, MSR Action3D *_skeleton3D.txt "
        "files, .npy arrays (one (T, M, V, C) recording or ST-GCN (N, C, T, V, M) arrays) "
        "or folders of those.",
    )


def find_project(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` whose pyproject.toml has a [tool.kedro] table."""
    for folder in (start, *start.parents):
        manifest = folder / "pyproject.toml"
        if manifest.is_file() and "[tool.kedro]" in manifest.read_text(encoding="utf-8"):
            return folder
    return None


def _labels(args: SimpleNamespace) -> CandidateNames:
    from pose_zsl.inference import CandidateNames, read_labels_file, split_labels

    labels = split_labels(args.labels)
    if args.labels_file is not None:
        labels += read_labels_file(args.labels_file)
    return CandidateNames.check(labels)


def _load_predictor(args: SimpleNamespace, project: Path | None) -> ZeroShotPredictor:
    from pose_zsl.inference import ZeroShotPredictor

    options = {"device": args.device, "batch_size": args.batch_size}
    if args.model_uri or args.run_id:
        import mlflow

        from pose_zsl.mlflow_model import load_predictor

        tracking = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if tracking is None and project is not None:
            tracking = f"sqlite:///{project / 'mlflow.db'}"
        if tracking is not None:
            mlflow.set_tracking_uri(tracking)
        uri = args.model_uri or f"runs:/{args.run_id}/{args.model_name}"
        try:
            return load_predictor(uri, **options)
        except mlflow.exceptions.MlflowException as error:
            raise ValueError(f"cannot load the MLflow model {uri}: {error.message}") from None
    if project is None:
        raise UsageError(
            "not inside a Kedro project: pass --project PATH, or --model-uri / --run-id"
        )
    from pose_zsl.environments import config_loader, unknown_environment
    from pose_zsl.grid import grid_from_parameters

    if not (project / "conf" / "base").is_dir():
        raise UsageError(f"--project {project}: no conf/base folder, not a Kedro project")
    problem = unknown_environment(args.env, project)
    if problem:
        raise UsageError(f"--env: {problem}")
    loader = config_loader(args.env, project)
    grid = grid_from_parameters(loader["parameters"])
    return ZeroShotPredictor.from_project(
        project,
        args.split or grid.splits[0],
        args.head,
        args.embedding or grid.learned_embeddings[0],
        env=args.env,
        **options,
    )


def format_table(predictions: pd.DataFrame) -> str:
    """The ranked table as printed: text columns left-aligned, numbers right-aligned."""
    columns = {
        "recording": predictions["recording"].astype(str).tolist(),
        "rank": predictions["rank"].astype(str).tolist(),
        "label": predictions["label"].astype(str).tolist(),
        "score": [f"{v:.4g}" for v in predictions["score"]],
        "share": [f"{v:.3f}" for v in predictions["share"]],
        "raw_score": [f"{v:.4g}" for v in predictions["raw_score"]],
        "seen": ["seen" if v else "unseen" for v in predictions["seen"]],
        "matched_class": predictions["matched_class"].fillna("").astype(str).tolist(),
    }
    numeric = {"rank", "score", "share", "raw_score"}
    widths = {name: max(len(name), *map(len, values)) for name, values in columns.items()}

    def line(cells: dict[str, str]) -> str:
        parts = [
            cells[name].rjust(widths[name]) if name in numeric else cells[name].ljust(widths[name])
            for name in columns
        ]
        return "  ".join(parts).rstrip()

    rows = [line({name: name for name in columns})]
    rows += [
        line({name: values[i] for name, values in columns.items()}) for i in range(len(predictions))
    ]
    return "\n".join(rows)


def _write(predictions: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        predictions.to_parquet(path, index=False)
    else:
        predictions.to_csv(path, index=False)


def _report_adapted(adapted: pd.DataFrame, model_layout: str) -> None:
    """One stderr line per layout that was read through an adapter (--adapt-layout auto)."""
    for layout, rows in adapted.groupby("layout", sort=False):
        print(
            f"pose-zsl: read {len(rows)} {layout} recording(s) as the model's layout "
            f"{model_layout} (--adapt-layout off skips them): {', '.join(rows['recording'])}",
            file=sys.stderr,
        )


def _predict(args: SimpleNamespace) -> int:
    import pandas as pd

    from pose_zsl.inference import OptionNames, Ranking, check_options

    try:  # the predictor's checks, before the model is loaded, naming the flags
        names = OptionNames("--top-k", "--calibration", "--adapt-layout")
        options = check_options(args.top_k, args.calibration, args.adapt_layout, names)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.model_uri and args.run_id:
        raise UsageError("give --model-uri or --run-id, not both")
    if args.output is not None and args.output.suffix not in OUTPUT_FORMATS:
        raise UsageError(f"--output {args.output}: use a .parquet or .csv file name")
    try:
        labels = _labels(args)
    except ValueError as error:
        raise UsageError(str(error)) from None
    project = args.project.resolve() if args.project else find_project(Path.cwd())
    predictor = _load_predictor(args, project)  # missing/unusable models: main() exits with 1
    recordings, unreadable = predictor.read(args.recordings, denoise=not args.no_denoise)
    ranking = predictor.rank_checked(recordings, labels, options)
    _report_adapted(ranking.adapted, predictor.layout)
    skipped = pd.concat([unreadable, ranking.skipped], ignore_index=True)
    for recording, reason in skipped.itertuples(index=False):
        print(f"pose-zsl: skipped {recording}: {reason}", file=sys.stderr)
    predictions = ranking.predictions
    if not predictions.empty:
        print(format_table(predictions))
    if args.output is not None:
        rows = Ranking(predictions, skipped).combined()
        _write(rows, args.output)
        print(
            f"wrote {len(rows)} rows to {args.output} ({len(skipped)} skipped recording(s) as "
            "rows with an 'error')",
            file=sys.stderr,
        )
    if predictions.empty:
        print(
            f"pose-zsl: error: none of the {len(skipped)} recording(s) could be predicted",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_PARTIAL if len(skipped) else EXIT_OK


def run_predict(args: SimpleNamespace) -> int:
    """The ``predict`` command's callback: the exit status (bad arguments raise
    :class:`click.UsageError`, which click reports with the usage line and status 2)."""
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # skipped recordings are reported once, by _predict
        logging.getLogger("pose_zsl.inference").setLevel(logging.ERROR)
        # model-loading progress bars of huggingface_hub / transformers (read at their import)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        return _predict(args)
    except UsageError as error:
        raise click.UsageError(str(error)) from None
    except (OSError, ValueError) as error:
        print(f"pose-zsl: error: {error}", file=sys.stderr)
        return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pose-zsl`` console script; returns the exit status."""
    commands = ProjectCommands(name="pose-zsl", help="Zero-shot skeleton action recognition.")
    try:
        status = commands.main(
            args=None if argv is None else list(argv), prog_name="pose-zsl", standalone_mode=False
        )
    except click.UsageError as error:
        error.show()
        return EXIT_USAGE
    except click.Abort:
        return EXIT_FAILED
    return EXIT_OK if status is None else int(status)


class ProjectCommands(click.Group):
    """The project's commands; ``predict`` is built only when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "predict"})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return predict_command() if name == "predict" else super().get_command(ctx, name)


#: Kedro loads ``<package>.cli.cli`` for project commands: ``kedro predict`` is ``pose-zsl
#: predict``, and ``kedro run`` prints one-line errors (:class:`ShortErrorCommand`).
cli = ProjectCommands(name="pose_zsl", help="pose-zsl project commands.")


#: Set (to anything) to see the traceback of a failed ``kedro run`` instead of one line.
TRACEBACK_VARIABLE = "POSE_ZSL_TRACEBACK"


class ShortErrorCommand(click.Command):
    """A command whose failure prints one line, ``Error: <type>: <message>``, and exits with
    status 1; the traceback goes to the DEBUG log, or to the console when
    :data:`TRACEBACK_VARIABLE` is set."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            if os.environ.get(TRACEBACK_VARIABLE):
                raise
            logger.debug("kedro run failed", exc_info=True)
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            # Kedro's dataset errors put what failed first and the cause last
            message = lines[-1] if lines else repr(error)
            raise click.ClickException(
                f"{type(error).__name__}: {message}\n(set {TRACEBACK_VARIABLE}=1 for the traceback)"
            ) from error


def _run_command() -> click.Command:
    """Kedro's own ``run`` (same options and behaviour) with one-line errors."""
    from kedro.framework.cli.project import run

    return ShortErrorCommand(
        name="run", callback=run.callback, params=run.params, help=run.help,
        context_settings=run.context_settings,
    )  # fmt: skip


cli.add_command(_run_command())


if __name__ == "__main__":
    sys.exit(main())
