"""Which ST-GCN each repeat of a variant's head stands on (``zsl_training.repeats`` and
``zsl_training.repeat_backbone``).

A variant trains its head ``repeats`` N times, with head seeds ``seed .. seed + N - 1``. With
``repeat_backbone: false`` (the default) every head stands on the split's one ST-GCN (its
``features`` and ``calibration_features``), so the spread over repeats is the heads' seeds
alone. With ``repeat_backbone: true`` repeat k >= 1 also gets an ST-GCN of its own, trained with
``stgcn_training.seed + k`` on the same samples and recipe, and a calibration ST-GCN alike; their
features are the split's ``repeat_features`` / ``repeat_calibration_features`` tables, one row
per sample and repeat, told apart by :data:`REPEAT_COLUMNS`. Repeat 0 is always the split's own
ST-GCN: the exported and served model does not change with the option.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

#: Columns the repeat feature tables add to a feature table: the repeat k (>= 1) whose ST-GCN
#: computed the row and that ST-GCN's training seed.
REPEAT_COLUMNS = ("repeat", "backbone_seed")


def check_repeats(repeats: Any) -> int:
    """``zsl_training.repeats`` as an int.

    Raises:
        ValueError: not an integer of at least 1.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(
            "zsl_training.repeats must be an integer >= 1 (how many heads of different seeds "
            f"each variant trains), got {repeats!r}"
        )
    return repeats


def check_repeat_backbone(repeat_backbone: Any) -> bool:
    """``zsl_training.repeat_backbone`` as a bool.

    Raises:
        ValueError: anything but true or false (a YAML string such as ``"yes"`` is refused
            rather than read as true).
    """
    if not isinstance(repeat_backbone, bool):
        raise ValueError(
            "zsl_training.repeat_backbone must be true or false (whether every repeat also "
            f"trains its own ST-GCN), got {repeat_backbone!r}"
        )
    return repeat_backbone


def backbone_repeats(repeats: Any, repeat_backbone: Any) -> list[int]:
    """The repeats k >= 1 that train an ST-GCN of their own: ``1 .. repeats - 1`` with
    ``repeat_backbone`` on, none with it off."""
    count = check_repeats(repeats)
    return list(range(1, count)) if check_repeat_backbone(repeat_backbone) else []


def head_backbones(params: dict[str, Any]) -> list[int]:
    """For each head repeat r of ``params`` (``zsl_training``), the repeat whose ST-GCN it stands
    on: r with ``repeat_backbone`` on, 0 (the split's own ST-GCN) with it off."""
    count = check_repeats(params["repeats"])
    own = check_repeat_backbone(params.get("repeat_backbone", False))
    return [r if own else 0 for r in range(count)]


def backbone_rows(
    features: pd.DataFrame, repeat_features: pd.DataFrame, backbone: int, what: str
) -> pd.DataFrame:
    """The feature rows of ``backbone``: ``features`` for 0, the rows of ``repeat_features``
    whose ``repeat`` is ``backbone`` otherwise (without :data:`REPEAT_COLUMNS`).

    Raises:
        ValueError: no rows for that repeat (features of an earlier run with fewer repeats, or
            with ``repeat_backbone`` off); the message names ``what``.
    """
    if backbone == 0:
        return features
    if "repeat" in repeat_features:
        rows = repeat_features[repeat_features["repeat"] == backbone]
    else:  # the empty table of a run with repeat_backbone off
        rows = repeat_features.iloc[0:0]
    if rows.empty:
        present = sorted(int(r) for r in repeat_features.get("repeat", pd.Series()).unique())
        raise ValueError(
            f"{what} has no rows of repeat {backbone} (repeats present: {present}): rerun the "
            "stgcn_training and feature_extraction pipelines with the same "
            "zsl_training.repeats and zsl_training.repeat_backbone"
        )
    return rows.drop(columns=list(REPEAT_COLUMNS)).reset_index(drop=True)


def backbone_seed_of(repeat_features: pd.DataFrame, backbone: int, main_seed: int) -> int:
    """The ST-GCN training seed behind ``backbone``: ``main_seed`` (``stgcn_training.seed``)
    for the split's own ST-GCN, the repeat rows' ``backbone_seed`` otherwise."""
    if backbone == 0:
        return int(main_seed)
    seeds = repeat_features.loc[repeat_features["repeat"] == backbone, "backbone_seed"].unique()
    if len(seeds) != 1:
        raise ValueError(f"repeat {backbone}'s features carry backbone seeds {list(seeds)}")
    return int(seeds[0])


def with_repeat_columns(features: pd.DataFrame, repeat: int, backbone_seed: int) -> pd.DataFrame:
    """``features`` of repeat ``repeat``'s ST-GCN with :data:`REPEAT_COLUMNS` added."""
    return features.assign(repeat=int(repeat), backbone_seed=int(backbone_seed))


def empty_repeat_features(columns: Any) -> pd.DataFrame:
    """The repeat feature table of a run without repeat backbones: no rows, the columns of a
    feature table and :data:`REPEAT_COLUMNS`."""
    return pd.DataFrame(columns=[*columns, *REPEAT_COLUMNS])
