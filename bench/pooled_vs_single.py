"""Do seen classes from a second dataset help the unseen ones? Pooled against single-dataset
zero-shot accuracy, paired by split.

The ``kinect_v1_pooled`` environment's split ``pooled_random_<k>`` has as unseen classes the
union of each dataset's own split ``k`` (``msr_random_<k>`` of ``msr_action3d``, ``random_<k>``
of ``utkinect``), and its within-dataset rows (protocol ``zsl_<dataset>``) rank that dataset's
unseen test samples among its own unseen classes: the single-dataset run's task on the same
samples and candidates, by a model that also trained on the other dataset's seen classes. This
script pairs the two by ``k`` (heads' seeds averaged per split first) and reports, per dataset,
head and embedding, the pooled mean, the single mean and the paired difference with its 95 %
t-interval over the splits.

    .venv/bin/python bench/pooled_vs_single.py \\
        --pooled data/kinect_v1_pooled/08_reporting/metrics.parquet \\
        --single msr_action3d=data/msr_action3d/08_reporting/metrics.parquet \\
        --single utkinect=data/utkinect/08_reporting/metrics.parquet

(Each ``metrics.parquet`` is ``data/<env>/08_reporting/metrics.parquet`` after ``kedro run
--env <env>``.) Ends with ``RESULT pooled_minus_single_<dataset>_<head>=<mean>`` per
dataset and head for the first learned embedding.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

from pose_zsl.reporting import format_interval, markdown_table
from pose_zsl.zsl.stats import paired_differences, summarise_splits

_K = re.compile(r"(\d+)$")
KEYS = ["dataset", "head", "embedding"]


def split_index(split: str) -> int:
    match = _K.search(split)
    if match is None:
        raise ValueError(f"split {split!r} has no trailing index k to pair by")
    return int(match.group(1))


def pooled_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    rows = metrics[metrics["protocol"].str.startswith("zsl_") & (metrics["metric"] == "top1")]
    return rows.assign(dataset=rows["protocol"].str.removeprefix("zsl_"), training="pooled")


def single_rows(metrics: pd.DataFrame, dataset: str) -> pd.DataFrame:
    rows = metrics[(metrics["protocol"] == "zsl") & (metrics["metric"] == "top1")]
    return rows.assign(dataset=dataset, training="single")


def compare(pooled: pd.DataFrame, singles: dict[str, pd.DataFrame]) -> pd.DataFrame:
    both = pd.concat(
        [pooled_rows(pooled), *(single_rows(m, d) for d, m in singles.items())], ignore_index=True
    )
    both = both[both["embedding"] != "none"]
    both["split"] = both["split"].map(split_index)
    shared = set(both.loc[both["training"] == "pooled", "split"]) & set(
        both.loc[both["training"] == "single", "split"]
    )
    both = both[both["split"].isin(shared)]
    means = summarise_splits(both, [*KEYS, "training"])
    wide = means.pivot_table(index=KEYS, columns="training", values="mean").reset_index()
    difference = paired_differences(both, KEYS, "training", "pooled", "single")
    return wide.merge(difference, on=KEYS, how="inner")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pooled", type=Path, required=True)
    parser.add_argument("--single", action="append", required=True, metavar="DATASET=PATH")
    args = parser.parse_args(argv)
    singles = {}
    for item in args.single:
        dataset, _, path = item.partition("=")
        if not path:
            parser.error(f"--single {item!r}: expected DATASET=PATH")
        singles[dataset] = pd.read_parquet(path)
    table = compare(pd.read_parquet(args.pooled), singles)
    if table.empty:
        print("no split of the pooled run pairs with a single-dataset run", file=sys.stderr)
        return 1
    table["pooled - single"] = [
        format_interval(m, lo, hi, spread=s)
        for m, s, lo, hi in table[["mean", "std", "ci_low", "ci_high"]].itertuples(index=False)
    ]
    shown = table[[*KEYS, "splits", "single", "pooled", "pooled - single"]].round(1)
    print(markdown_table(shown))
    first = shown["embedding"].iloc[0]
    for row in table[table["embedding"] == first].itertuples(index=False):
        print(f"RESULT pooled_minus_single_{row.dataset}_{row.head}={row.mean:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
