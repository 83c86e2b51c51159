"""Reruns of the same command on one machine give the same numbers.

Two complete ``kedro run``s of the default pipeline on the tiny data, each in its own fresh
project (own data folder, own ST-GCN checkpoints, own tracking store): the second computes
everything again instead of resuming, and every value of ``metrics.parquet``, for every
head, embedding, split and metric, must be bit-for-bit the first one's.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import TinyRun, make_tiny_project, run_tiny_default_pipeline

METRICS = "data/08_reporting/metrics.parquet"


def _metrics(run: TinyRun) -> pd.DataFrame:
    """The run's metrics in a canonical row order: by every non-float column (the keys:
    split, head, embedding, protocol, metric, ...), then by the values."""
    metrics = pd.read_parquet(run.project / METRICS)
    floats = [c for c in metrics.columns if pd.api.types.is_float_dtype(metrics[c])]
    keys = [c for c in metrics.columns if c not in floats]
    return metrics.sort_values(keys + floats, kind="stable").reset_index(drop=True)


def test_two_fresh_runs_give_identical_metrics(
    tiny_tracked_project: TinyRun, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("rerun")
    rerun = run_tiny_default_pipeline(make_tiny_project(root), f"sqlite:///{root / 'mlflow.db'}")
    assert rerun.project != tiny_tracked_project.project
    first, second = _metrics(tiny_tracked_project), _metrics(rerun)
    # Not vacuous: the grid's heads and the vanilla ST-GCN were all evaluated.
    assert {"devise", "relation_net", "infonce", "vanilla_stgcn"} <= set(first["head"])
    assert first["value"].notna().any()
    pd.testing.assert_frame_equal(first, second, check_exact=True)
