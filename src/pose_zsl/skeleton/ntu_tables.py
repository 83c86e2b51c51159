"""Official NTU RGB+D 60/120 tables: action names, missing-skeleton lists, protocol rules.

The names and lists ship as package data (``pose_zsl/skeleton/data/``) because the product needs
them at run time; the protocol constants are those of the dataset papers (Shahroudy et al. 2016,
Liu et al. 2019) as used by st-gcn / 2s-AGCN / CTR-GCN.
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources

_DATA = resources.files("pose_zsl.skeleton") / "data"
_MISSING_FILES = {
    "ntu60": "NTU_RGBD_samples_with_missing_skeletons.txt",
    "ntu120": "NTU_RGBD120_samples_with_missing_skeletons.txt",
}
_NUM_CLASSES = {"ntu60": 60, "ntu120": 120}

XSUB_TRAIN_PERFORMERS_60: frozenset[int] = frozenset(
    [1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38]
)
XSUB_TRAIN_PERFORMERS_120: frozenset[int] = XSUB_TRAIN_PERFORMERS_60 | frozenset(
    [45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85,
     86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103]
)  # fmt: skip
XVIEW_TRAIN_CAMERAS: frozenset[int] = frozenset([2, 3])
#: 0-based ids of the mutual (two-person) actions: A050-A060 and A106-A120.
TWO_PERSON_ACTIONS: frozenset[int] = frozenset([*range(49, 60), *range(105, 120)])


def xset_is_train(setup: int) -> bool:
    """NTU-120 cross-setup protocol: even setup ids are training setups."""
    return setup % 2 == 0


def xsub_is_train(performer: int, dataset: str = "ntu60") -> bool:
    performers = (
        XSUB_TRAIN_PERFORMERS_60 if _check(dataset) == "ntu60" else (XSUB_TRAIN_PERFORMERS_120)
    )
    return performer in performers


def xview_is_train(camera: int) -> bool:
    return camera in XVIEW_TRAIN_CAMERAS


def _check(dataset: str) -> str:
    if dataset not in _MISSING_FILES:
        raise ValueError(f"dataset must be one of {sorted(_MISSING_FILES)}, got {dataset!r}")
    return dataset


@cache
def _all_action_names() -> tuple[str, ...]:
    text = (_DATA / "ntu120_actions.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    expected = [f"A{i:03d}" for i in range(1, 121)]
    found = [row["action_id"] for row in rows]
    if found != expected:
        raise RuntimeError("packaged ntu120_actions.csv does not list A001..A120 in order")
    return tuple(row["name"].strip() for row in rows)


def action_names(num_classes: int = 60) -> list[str]:
    """Action names in 0-based class order (index 0 is A001 "drink water")."""
    if num_classes not in (60, 120):
        raise ValueError(f"num_classes must be 60 or 120, got {num_classes}")
    return list(_all_action_names()[:num_classes])


def num_classes(dataset: str) -> int:
    return _NUM_CLASSES[_check(dataset)]


@cache
def missing_skeleton_ids(dataset: str = "ntu60") -> frozenset[str]:
    """Sample names (``SsssCcccPpppRrrrAaaa``) the dataset authors list as missing skeletons."""
    text = (_DATA / _MISSING_FILES[_check(dataset)]).read_text(encoding="utf-8")
    ids = frozenset(
        line.strip()
        for line in text.splitlines()
        if line.strip().startswith("S") and len(line.strip()) == 20
    )
    return ids
