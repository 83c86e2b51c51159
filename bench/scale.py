"""The chain at NTU RGB+D 120 size: time, memory and disk of each data-heavy stage, measured.

Generates ``--n`` synthetic NTU-format recordings with NTU-120's names, lengths and body counts
(:mod:`pose_zsl.skeleton.synthetic_scale`), ``--corrupt`` of them replaced by corrupt files
(truncated, empty, 24 joints), and runs the real Kedro pipelines on them in a throw-away copy of
the project (environment ``scale``: the named NTU-120 split ``ntu120_110_10``, cross-subject
protocol, a small ST-GCN trained for one epoch, short head schedules; this measures data
handling, not accuracy). Each stage runs in its own process, as ``kedro run --pipelines``
would, with one torch thread (``--threads``; on a CPU shared with other jobs the small models
run several times faster so) and MLflow tracking into the temporary folder; the same is done on
a ``--small`` subset (default 10,000) first, so the per-sample cost at both sizes is measured
side by side in one run.

Per stage: wall time, samples per second (dataset size / wall time, for every stage), peak
memory of the whole process tree (the stage's process and its workers, sampled from
``/proc/<pid>/smaps_rollup`` every 0.2 s) and bytes written to disk (``ru_oublock`` of the
stage's process and the workers it reaped). Memory is proportional set size (PSS: a page
shared by a forked worker and its parent counts once), split into

* *private*: anonymous and shared-memory pages: what the chain itself holds, and what an
  out-of-memory kill is about;
* *total*: private plus file pages mapped and touched (the memory-mapped ``sequences`` table,
  libraries): the kernel drops those under memory pressure and reads them again when needed.

Ends with ``RESULT scale_rss_gb=`` (peak private PSS over all stages at full size),
``RESULT scale_rss_total_gb=`` (peak total PSS), ``RESULT scale_per_sample_ratio=`` (whole-chain
seconds per recording at full size / at the small size) and ``RESULT ingest_files_per_s=``
(files per second of the ingestion stage at full size).

Disk: ``--unique`` distinct recordings are generated (about 0.28 MB each) and every other name
is a hard link to one of them (see ``synthetic_scale``); the sequences table takes about
0.055 MB per recording. The script checks the free space first and says what it needs (about
11 GB at full size with the default ``--unique``; 41 GB with every file distinct); everything
lives in one temporary folder (``--tmp``, default the system's) that is removed at the end,
also after Ctrl-C or an error.

    .venv/bin/python bench/scale.py                        # 114,480 + 10,000 (about 11 GB)
    .venv/bin/python bench/scale.py --n 2000 --small 500   # a quick look
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

PROJECT = Path(__file__).resolve().parents[1]
ENV = "scale"
GB = 1e9
#: Generated file and stored sequence sizes per recording (measured means), for the disk check.
FILE_BYTES, SEQUENCE_BYTES = 0.29e6, 0.056e6
#: (stage, Kedro pipelines it runs), in chain order.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ingestion", ("ingestion",)),
    ("label_embedding", ("label_embedding",)),
    ("split_selection", ("split_selection",)),
    ("stgcn_training", ("stgcn_training",)),
    ("feature_extraction", ("feature_extraction",)),
    ("zsl_training", ("zsl_training",)),
    ("evaluation", ("evaluation",)),
)
SPLIT = "ntu120_110_10"
#: The ``scale`` environment's parameters: one named split, a small ST-GCN for one epoch,
#: one seed of each head with short schedules.
PARAMETERS = {
    "ingestion": {"workers": None},
    "split_selection": {"splits": [SPLIT]},
    "stgcn_training": {
        "preset": "synthetic",
        "epochs": 1,
        "batch_size": 64,
        "window": 16,
        "width": 0.125,
        "lr_milestones": [],
        "val_fraction": 0.05,
    },
    "feature_extraction": {"batch_size": 256},
    "zsl_training": {
        "repeats": 1,
        "devise": {"epochs": 1},
        "relation_net": {"episodes": 200, "lr_step": 100, "log_every": 100},
        "infonce": {"epochs": 1},
    },
}
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "true",
    "KEDRO_DISABLE_TELEMETRY": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


# ---------------------------------------------------------------------------------------------
# Memory of a process tree


def _children_of(pid: int) -> list[int]:
    """The child pids of ``pid`` (``/proc/<pid>/task/<tid>/children``); none once it is gone."""
    children = []
    try:
        for task in os.scandir(f"/proc/{pid}/task"):
            children += [int(c) for c in Path(task.path, "children").read_text().split()]
    except OSError:
        pass
    return children


def tree_pids(root: int) -> list[int]:
    """``root`` and its descendants, read only from the tree's own ``/proc`` entries (a scan of
    every process would cost a few ms a sample on the cores being measured)."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo += _children_of(pid)
    return pids


def pss_kb(pid: int) -> tuple[int, int]:
    """(total PSS, anonymous + shared-memory PSS) of one process in kB; zeros once it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    fields = dict(re.findall(r"^(\w+):\s+(\d+) kB", text, re.MULTILINE))
    return int(fields.get("Pss", 0)), int(fields.get("Pss_Anon", 0)) + int(
        fields.get("Pss_Shmem", 0)
    )


class TreeSampler(threading.Thread):
    """Samples the summed PSS of a process and its descendants until stopped; keeps the peaks."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_total_kb = self.peak_private_kb = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            sizes = [pss_kb(pid) for pid in tree_pids(self.pid)]
            self.peak_total_kb = max(self.peak_total_kb, sum(total for total, _ in sizes))
            self.peak_private_kb = max(self.peak_private_kb, sum(own for _, own in sizes))
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


# ---------------------------------------------------------------------------------------------
# One run: a throw-away project over one folder of recordings


@dataclass
class StageResult:
    stage: str
    wall_s: float
    peak_total_gb: float
    peak_private_gb: float
    written_gb: float


@dataclass
class SizeResult:
    files: int
    samples: int = 0
    stages: list[StageResult] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return sum(stage.wall_s for stage in self.stages)


def make_project(root: Path, raw: Path) -> Path:
    """A copy of the project's configuration with the ``scale`` environment over ``raw``."""
    import yaml

    project = root / "project"
    project.mkdir(parents=True)
    shutil.copy(PROJECT / "pyproject.toml", project / "pyproject.toml")
    (project / "src").mkdir()
    shutil.copytree(PROJECT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    env = project / "conf" / ENV
    env.mkdir()
    catalog = {
        "raw_recordings": {
            "type": "pose_zsl.datasets.SkeletonSourceDataset",
            "path": str(raw),
            "format": "ntu",
            "dataset": "ntu120",
            "source": "synthetic",
        }
    }
    (env / "catalog.yml").write_text(yaml.safe_dump(catalog))
    (env / "parameters.yml").write_text(yaml.safe_dump(PARAMETERS))
    globals_ = {"data_root": "data", "dataset": "synthetic_ntu120", "protocol": "xsub"}
    (env / "globals.yml").write_text(yaml.safe_dump(globals_))
    return project


def run_stage(
    project: Path, stage: str, pipelines: tuple[str, ...], log: Path, threads: int
) -> StageResult:
    """Run ``pipelines`` in a fresh process (as ``kedro run --pipelines`` does) and measure it.

    MLflow tracks into a database beside the project (the default store is anchored at the
    source checkout); ``threads`` caps torch's threads (OMP_NUM_THREADS): on a CPU shared with
    other jobs, small models run several times faster on one thread than on oversubscribed ones.
    """
    command = [sys.executable, __file__, "--child", str(project), *pipelines]
    environment = {
        **os.environ,
        **OFFLINE,
        "PYTHONPATH": str(PROJECT / "src"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{project.parent / 'mlflow.db'}",
        "OMP_NUM_THREADS": str(threads),
    }
    with log.open("a") as out:
        out.write(f"\n===== {stage} =====\n")
        out.flush()
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=project, env=environment, stdout=out, stderr=out)
        sampler = TreeSampler(child.pid)
        sampler.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            sampler.stop()
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
        raise RuntimeError(f"stage {stage} failed (exit {child.returncode}); log tail:\n{tail}")
    return StageResult(
        stage,
        wall,
        sampler.peak_total_kb * 1e3 / GB,
        sampler.peak_private_kb * 1e3 / GB,
        usage.ru_oublock * 512 / GB,
    )


def child_main(project: Path, pipelines: list[str]) -> None:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=ENV) as session:
        session.run(pipeline_names=pipelines)


def check_ingestion(project: Path, kinds: dict[str, str]) -> int:
    """The ingested sample count; raises unless exactly the corrupt files were skipped, each
    with the reason its corruption gives."""
    import pandas as pd

    data = project / "data"
    samples = pd.read_parquet(data / "02_intermediate" / "samples.parquet")
    skipped = pd.read_parquet(data / "08_reporting" / "ingestion_skipped.parquet")
    corrupt = {name: kind for name, kind in kinds.items() if kind != "ok"}
    problems = []
    if set(skipped["sample_id"]) != set(corrupt) or len(skipped) != len(corrupt):
        problems.append(f"skipped {len(skipped)} files, expected the {len(corrupt)} corrupt ones")
    if set(samples["sample_id"]) != set(kinds) - set(corrupt):
        problems.append("the samples are not exactly the valid files")
    if set(skipped["category"]) - {"bad_file"}:
        problems.append(f"unexpected skip categories {sorted(set(skipped['category']))}")
    expected_reason = {"empty": "empty file", "wrong_joint_count": "expected 25 joints, got 24"}
    for row in skipped.itertuples():
        wanted = expected_reason.get(corrupt.get(row.sample_id, ""))
        if wanted is not None and wanted not in row.reason:
            problems.append(f"{row.sample_id}: reason {row.reason!r} lacks {wanted!r}")
            break
    if problems:
        raise RuntimeError("ingestion accounting is wrong: " + "; ".join(problems))
    counts = {kind: list(corrupt.values()).count(kind) for kind in sorted(set(corrupt.values()))}
    print(f"  skipped exactly the {len(corrupt)} corrupt files {counts}; {len(samples)} ingested")
    return len(samples)


def run_size(
    root: Path, raw: Path, kinds: dict[str, str], stages: list[str], threads: int
) -> SizeResult:
    project = make_project(root, raw)
    log = root / "run.log"
    result = SizeResult(files=len(kinds))
    print(f"\n== {len(kinds):,} recordings (log: {log})", flush=True)
    for stage, pipelines in STAGES:
        if stage not in stages:
            continue
        measured = run_stage(project, stage, pipelines, log, threads)
        result.stages.append(measured)
        print(
            f"  {stage:<19} {measured.wall_s:8.1f} s  peak private {measured.peak_private_gb:6.2f}"
            f" GB  total {measured.peak_total_gb:6.2f} GB  written {measured.written_gb:6.2f} GB",
            flush=True,
        )
        if stage == "ingestion":
            result.samples = check_ingestion(project, kinds)
    return result


# ---------------------------------------------------------------------------------------------
# Report


def table(results: list[SizeResult]) -> str:
    lines = [
        "| recordings | stage | wall s | recordings/s | private GB | total GB | written GB |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for size in results:
        for stage in [*size.stages, None]:
            if stage is None:  # the whole chain
                wall = size.wall_s
                private = max(s.peak_private_gb for s in size.stages)
                total = max(s.peak_total_gb for s in size.stages)
                written = sum(s.written_gb for s in size.stages)
                name = "**whole chain**"
            else:
                wall, private, total, written, name = (
                    stage.wall_s,
                    stage.peak_private_gb,
                    stage.peak_total_gb,
                    stage.written_gb,
                    stage.stage,
                )
            lines.append(
                f"| {size.files:,} | {name} | {wall:.1f} | {size.files / wall:,.0f} | "
                f"{private:.2f} | {total:.2f} | {written:.2f} |"
            )
    return "\n".join(lines)


def disk_needed(n: int, unique: int) -> float:
    """Bytes the run needs at its peak: the generated files and the full run's sequences (the
    spool becomes the table; the small run's data is removed before the full run), plus 1 GB
    for features, models and MLflow."""
    return min(unique, n) * FILE_BYTES + n * SEQUENCE_BYTES + 1e9


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from pose_zsl.skeleton.synthetic_scale import NTU120_SIZE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=NTU120_SIZE, help="recordings at full size")
    parser.add_argument("--small", type=int, default=10_000, help="recordings of the small run")
    parser.add_argument("--corrupt", type=int, default=2_000, help="corrupt files among --n")
    parser.add_argument("--unique", type=int, default=12_000, help="distinct recordings written")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp", type=Path, default=None, help="where the temporary folder goes")
    parser.add_argument("--stages", default=",".join(stage for stage, _ in STAGES))
    parser.add_argument("--threads", type=int, default=1, help="torch threads per stage")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if not 1 <= args.small < args.n:
        parser.error("need 1 <= --small < --n")
    unknown = set(args.stages.split(",")) - {stage for stage, _ in STAGES}
    if unknown:
        parser.error(f"unknown stages {sorted(unknown)}")
    return args


def main(argv: list[str] | None = None) -> None:
    if argv is None and len(sys.argv) > 2 and sys.argv[1] == "--child":
        child_main(Path(sys.argv[2]), sys.argv[3:])
        return
    args = parse_args(argv)
    from pose_zsl.skeleton import synthetic_scale

    parent = args.tmp or Path(tempfile.gettempdir())
    needed, free = disk_needed(args.n, args.unique), shutil.disk_usage(parent).free
    print(f"disk: needs about {needed / GB:.1f} GB in {parent}, {free / GB:.1f} GB free")
    if needed > free:
        raise SystemExit("not enough free disk (use --tmp elsewhere, or a smaller --unique)")
    root = Path(tempfile.mkdtemp(prefix="scale_", dir=parent))
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        print(f"load average at start: {os.getloadavg()}, {os.cpu_count()} CPUs")
        started = time.perf_counter()
        names = synthetic_scale.ntu120_names(args.n, seed=args.seed)
        kinds = synthetic_scale.write_scale_set(
            root / "raw", names, unique=args.unique, corrupt=args.corrupt, seed=args.seed
        )
        print(
            f"generated {args.n:,} recordings ({min(args.unique, args.n):,} distinct, "
            f"{args.corrupt:,} corrupt) in {time.perf_counter() - started:.0f} s"
        )
        rng = np.random.default_rng([args.seed, args.small])
        subset = sorted(rng.choice(sorted(kinds), size=args.small, replace=False).tolist())
        synthetic_scale.link_subset(root / "raw", root / "raw_small", subset)
        stages = args.stages.split(",")
        results = []
        for raw, chosen in ((root / "raw_small", subset), (root / "raw", sorted(kinds))):
            run_root = root / f"run_{len(chosen)}"
            chosen_kinds = {name: kinds[name] for name in chosen}
            results.append(run_size(run_root, raw, chosen_kinds, stages, args.threads))
            if raw != root / "raw":
                shutil.rmtree(run_root / "project" / "data", ignore_errors=True)
        report(results)
        print(f"load average at end: {os.getloadavg()}")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM ends the run as Ctrl-C does, so the temporary folder is removed either way."""
    raise KeyboardInterrupt


def ratio_table(small: SizeResult, full: SizeResult) -> str:
    """Milliseconds per recording of each stage at both sizes, and their ratio: a stage whose
    ratio is well above 1 costs more per recording at full size (superlinear); fixed costs
    (process start, the label embedding, a fixed number of head episodes) push it below 1."""
    lines = [
        f"| stage | ms/recording at {small.files:,} | ms/recording at {full.files:,} | ratio |",
        "|---|---:|---:|---:|",
    ]
    pairs = [(a.stage, a.wall_s, b.wall_s) for a, b in zip(small.stages, full.stages, strict=True)]
    for stage, wall_small, wall_full in [*pairs, ("**whole chain**", small.wall_s, full.wall_s)]:
        per_small, per_full = 1e3 * wall_small / small.files, 1e3 * wall_full / full.files
        lines.append(f"| {stage} | {per_small:.2f} | {per_full:.2f} | {per_full / per_small:.2f} |")
    return "\n".join(lines)


def report(results: list[SizeResult]) -> None:
    small, full = results
    print("\n" + table(results) + "\n\n" + ratio_table(small, full) + "\n")
    per_small, per_full = small.wall_s / small.files, full.wall_s / full.files
    ingestion = next((s for s in full.stages if s.stage == "ingestion"), None)
    print(f"RESULT scale_rss_gb={max(s.peak_private_gb for s in full.stages):.2f}")
    print(f"RESULT scale_rss_total_gb={max(s.peak_total_gb for s in full.stages):.2f}")
    print(f"RESULT scale_per_sample_ratio={per_full / per_small:.3f}")
    if ingestion is not None:
        print(f"RESULT ingest_files_per_s={full.files / ingestion.wall_s:.0f}")


if __name__ == "__main__":
    main()
