"""Seen / unseen class splits.

Two kinds of split:

* **Selected from label embeddings** (the paper, section 4.2): ``nearest``, ``furthest`` and
  ``random``. The paper's wording ("the top few classes with least distance from other classes
  ... ensuring sufficient inter class variation between unseen test class names"; "the top few
  classes with highest distance from all other classes") leaves room, so the exact rules are
  fixed here (``D`` = pairwise distance between the L2-normalised label vectors, cosine
  ``1 - cos`` by default or Euclidean; ``nn(c)`` = the other class closest to ``c``;
  ``d(c) = D[c, nn(c)]``; ties always broken by the smaller action id):

  - **nearest** (:func:`select_nearest`): go through the classes in increasing ``d(c)`` and take
    ``c`` as unseen unless (a) ``nn(c)`` is already unseen, (b) ``c`` is ``nn(u)`` of an
    already chosen unseen ``u``, or (c) ``D[c, u]`` is below the separation threshold for some
    chosen ``u``; the threshold is the ``min_separation_quantile`` quantile (default 0.25) of all
    pairwise class distances. (a) and (b) guarantee that every unseen class keeps its nearest
    neighbour in the *seen* set, at distance ``d(c)``; (c) keeps the unseen classes apart
    from one another (no two of them closer than the closest quarter of all class pairs), the
    paper's "inter class variation". Fewer than ``num_unseen`` admissible classes is an error.
  - **furthest** (:func:`select_furthest`): the ``num_unseen`` classes with the largest
    ``d(c)``, the distance to their *nearest* other class. The minimum, not the mean, because
    zero-shot errors come from the closest seen classes: a class far from most others on
    average can still have a near twin (with all-MiniLM-L6-v2, "brushing hair" ranks 4th of 60
    by mean distance while "brushing teeth" is only 0.26 away), which would make it an easy
    unseen class. This mirrors ``nearest``, which ranks by the same quantity.
  - **random** (:func:`select_random`): ``num_unseen`` classes drawn without replacement by
    ``numpy.random.default_rng(seed)``.

* **Fixed benchmark splits** of the later literature (SynSE, SMIE, PURLS, SA-DVAE), 0-based
  ids, in :data:`BENCHMARK_SPLITS`, and seeded random 15/5 splits of MSR Action3D
  (``msr_random_<k>``).

Every split also gets a **pseudo-unseen** validation set: seen classes held out (seeded) for
calibration and tuning, so no real unseen class is ever used for model selection.

The splits table has one row per (split, class): split, action_id, action_name, role
("seen" | "unseen"), pseudo_unseen (bool; only ever True for seen classes).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pose_zsl.text.embedders import embedding_matrix

logger = logging.getLogger(__name__)

DISTANCES = ("cosine", "euclidean")
SELECTION_RULES = ("nearest", "furthest", "random")
SPLIT_COLUMNS = ("split", "action_id", "action_name", "role", "pseudo_unseen")

#: name -> (number of classes of the dataset, unseen 0-based action ids).
BENCHMARK_SPLITS: dict[str, tuple[int, tuple[int, ...]]] = {
    "ntu60_55_5": (60, (10, 11, 19, 26, 56)),
    "ntu60_48_12": (60, (3, 5, 9, 12, 15, 40, 42, 47, 51, 56, 58, 59)),
    "ntu120_110_10": (120, (4, 13, 37, 43, 49, 65, 88, 95, 99, 106)),
    "ntu120_96_24": (
        120,
        (
            5,
            9,
            11,
            16,
            18,
            20,
            22,
            29,
            35,
            39,
            45,
            49,
            59,
            68,
            70,
            81,
            84,
            87,
            93,
            94,
            104,
            113,
            114,
            119,
        ),
    ),
    "smie_ntu60_r1": (60, (4, 19, 31, 47, 51)),
    "smie_ntu60_r2": (60, (12, 29, 32, 44, 59)),
    "smie_ntu60_r3": (60, (7, 20, 28, 39, 58)),
}
MSR_NUM_CLASSES = 20
MSR_NUM_UNSEEN = 5
#: cross-dataset split name -> (source dataset, target dataset) of a pooled environment.
CROSS_DATASET_SPLITS: dict[str, tuple[str, str]] = {
    "msr_to_utkinect": ("msr_action3d", "utkinect"),
    "utkinect_to_msr": ("utkinect", "msr_action3d"),
}
#: target-class groups of a cross-dataset split (:func:`target_groups`)
TARGET_GROUPS = ("shared", "close", "novel")
_RANDOM_NAME = re.compile(r"^random_(\d+)$")
_POOLED_RANDOM_NAME = re.compile(r"^pooled_random_(\d+)$")
_MSR_RANDOM_NAME = re.compile(r"^msr_random_(\d+)$")


# -- distances -----------------------------------------------------------------------------
def distance_matrix(vectors: np.ndarray, distance: str = "cosine") -> np.ndarray:
    """Symmetric ``(n, n)`` float64 distances between rows, zero diagonal.

    ``cosine`` is ``1 - cos(a, b)`` (rows are normalised here); ``euclidean`` is ``|a - b|`` on
    the vectors as given (the label-embedding table stores them L2-normalised).
    """
    if distance not in DISTANCES:
        raise ValueError(f"parameter 'distance' must be one of {DISTANCES}, got {distance!r}")
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need an (n >= 2, dim) matrix of label vectors, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("label vectors contain NaN or inf")
    if distance == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        if (norms == 0).any():
            raise ValueError("a label vector is all zeros: cosine distance is undefined")
        unit = x / norms
        result = 1.0 - unit @ unit.T
    else:
        squared = (x * x).sum(1)
        result = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2.0 * x @ x.T, 0.0))
    result = (result + result.T) / 2.0  # exact symmetry, so ties break the same way both ways
    np.fill_diagonal(result, 0.0)
    return np.maximum(result, 0.0)


def _nearest_neighbours(distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    masked = distances + np.diag(np.full(len(distances), np.inf))
    neighbour = masked.argmin(axis=1)  # first minimum: smallest id on ties
    return neighbour, masked[np.arange(len(masked)), neighbour]


def _check_num_unseen(num_unseen: int, num_classes: int) -> None:
    if not isinstance(num_unseen, (int, np.integer)) or isinstance(num_unseen, bool):
        raise ValueError(f"parameter 'num_unseen' must be an integer, got {num_unseen!r}")
    if not 1 <= num_unseen < num_classes:
        raise ValueError(
            f"parameter 'num_unseen' must be between 1 and {num_classes - 1} (the dataset has "
            f"{num_classes} classes and needs at least one seen class), got {num_unseen}"
        )


# -- selection rules -------------------------------------------------------------------------
def select_nearest(
    vectors: np.ndarray,
    num_unseen: int = 5,
    distance: str = "cosine",
    min_separation_quantile: float = 0.25,
) -> list[int]:
    """Positions (rows of ``vectors``) of the **nearest** split's unseen classes, sorted.

    Classes in increasing distance ``d(c)`` to their nearest other class; a candidate is skipped
    when its nearest neighbour is already unseen, when it is the nearest neighbour of a chosen
    unseen class, or when it lies closer to a chosen unseen class than the
    ``min_separation_quantile`` quantile of all pairwise distances (module docstring).

    Raises:
        ValueError: bad ``num_unseen``/``distance``/``min_separation_quantile``, or fewer than
            ``num_unseen`` classes satisfy the rule.
    """
    distances = distance_matrix(vectors, distance)
    _check_num_unseen(num_unseen, len(distances))
    if not 0.0 <= min_separation_quantile <= 1.0:
        raise ValueError(
            f"parameter 'min_separation_quantile' must lie in [0, 1], got {min_separation_quantile}"
        )
    neighbour, nearest_distance = _nearest_neighbours(distances)
    pairs = distances[np.triu_indices(len(distances), k=1)]
    threshold = float(np.quantile(pairs, min_separation_quantile))
    unseen: list[int] = []
    for position in np.lexsort((np.arange(len(distances)), nearest_distance)):
        candidate = int(position)
        if any(
            neighbour[candidate] == chosen
            or neighbour[chosen] == candidate
            or distances[candidate, chosen] < threshold
            for chosen in unseen
        ):
            continue
        unseen.append(candidate)
        if len(unseen) == num_unseen:
            return sorted(unseen)
    raise ValueError(
        f"only {len(unseen)} classes satisfy the nearest-split rule but parameter 'num_unseen' "
        f"is {num_unseen}; lower 'min_separation_quantile' (now {min_separation_quantile}, "
        f"distance threshold {threshold:.3f}) or 'num_unseen'"
    )


def select_furthest(
    vectors: np.ndarray, num_unseen: int = 5, distance: str = "cosine"
) -> list[int]:
    """Positions of the **furthest** split's unseen classes, sorted: the ``num_unseen`` classes
    whose nearest other class is furthest away (ties: smaller position first)."""
    distances = distance_matrix(vectors, distance)
    _check_num_unseen(num_unseen, len(distances))
    _, nearest_distance = _nearest_neighbours(distances)
    order = np.lexsort((np.arange(len(distances)), -nearest_distance))
    return sorted(int(i) for i in order[:num_unseen])


def select_random(action_ids: Sequence[int], num_unseen: int = 5, seed: int = 0) -> list[int]:
    """``num_unseen`` of ``action_ids`` drawn without replacement with ``default_rng(seed)``."""
    ids = np.asarray(sorted(int(i) for i in action_ids), dtype=np.int64)
    _check_num_unseen(num_unseen, len(ids))
    chosen = np.random.default_rng(seed).choice(ids, size=num_unseen, replace=False)
    return sorted(int(i) for i in chosen)


def select_pseudo_unseen(seen_ids: Sequence[int], count: int, seed: int = 0) -> list[int]:
    """Seen classes held out as pseudo-unseen for calibration / tuning (seeded, sorted).

    Raises:
        ValueError: ``count`` negative or leaving fewer than 2 seen classes to train on.
    """
    seen = sorted(int(i) for i in seen_ids)
    if not 0 <= count <= len(seen) - 2:
        raise ValueError(
            f"parameter 'num_pseudo_unseen' must be between 0 and {len(seen) - 2} (there are "
            f"{len(seen)} seen classes and training needs at least 2), got {count}"
        )
    if count == 0:
        return []
    chosen = np.random.default_rng(seed).choice(np.asarray(seen), size=count, replace=False)
    return sorted(int(i) for i in chosen)


# -- named splits ------------------------------------------------------------------------------
def known_split_names() -> list[str]:
    """The accepted split names (patterns written with ``<k>``)."""
    return [
        *SELECTION_RULES,
        "random_<k>",
        *BENCHMARK_SPLITS,
        "msr_random_<k>",
        "pooled_random_<k>",
        *CROSS_DATASET_SPLITS,
    ]


def _table_ids_names(label_embeddings: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    missing = {"action_id", "action_name"} - set(label_embeddings.columns)
    if missing:
        raise ValueError(f"label-embedding table lacks columns {sorted(missing)}")
    ordered = label_embeddings.sort_values("action_id")
    ids = ordered["action_id"].to_numpy(dtype=np.int64)
    if len(np.unique(ids)) != len(ids):
        raise ValueError("label-embedding table has duplicate action_id values")
    return ids, [str(n) for n in ordered["action_name"]]


def check_unseen_ids(unseen: Sequence[int], action_ids: Sequence[int], split: str) -> list[int]:
    """Validate an explicit unseen list against the dataset's ids; returns it sorted.

    Raises:
        ValueError: ids outside the dataset, duplicates, an empty list or no seen class left.
    """
    known = {int(i) for i in action_ids}
    ids = [int(i) for i in unseen]
    outside = sorted(set(ids) - known)
    if outside:
        raise ValueError(
            f"split {split!r}: unseen action ids {outside} are outside the dataset's ids "
            f"({min(known)}..{max(known)}, {len(known)} classes)"
        )
    if len(set(ids)) != len(ids):
        raise ValueError(f"split {split!r}: duplicate unseen action ids {ids}")
    _check_num_unseen(len(ids), len(known))
    return sorted(ids)


def resolve_unseen(
    name: str,
    label_embeddings: pd.DataFrame,
    *,
    num_unseen: int = 5,
    distance: str = "cosine",
    seed: int = 0,
    min_separation_quantile: float = 0.25,
    custom_splits: Mapping[str, Sequence[int]] | None = None,
) -> list[int]:
    """Unseen action ids of the split called ``name`` (see :func:`known_split_names`; the
    pooled splits are :func:`pooled_split_unseen`'s).


    ``nearest``/``furthest`` use the table's vectors; ``random`` draws with ``seed`` and
    ``random_<k>`` with seed ``seed + k``; benchmark and ``msr_random_<k>`` splits check that
    the table has their dataset's class count; ``custom_splits`` maps extra names to id lists.

    Raises:
        ValueError: unknown name (the message lists the known ones) or any invalid parameter.
    """
    ids, _ = _table_ids_names(label_embeddings)
    if custom_splits and name in custom_splits:
        return check_unseen_ids(custom_splits[name], ids, name)
    if name in ("nearest", "furthest"):
        vectors = embedding_matrix(label_embeddings)
        if name == "nearest":
            positions = select_nearest(vectors, num_unseen, distance, min_separation_quantile)
        else:
            positions = select_furthest(vectors, num_unseen, distance)
        return sorted(int(ids[p]) for p in positions)
    if name == "random":
        return select_random(ids, num_unseen, seed)
    if match := _RANDOM_NAME.match(name):
        return select_random(ids, num_unseen, seed + int(match.group(1)))
    if name in BENCHMARK_SPLITS:
        num_classes, unseen = BENCHMARK_SPLITS[name]
        if len(ids) != num_classes:
            raise ValueError(
                f"split {name!r} is defined for {num_classes} classes, but the label-embedding "
                f"table has {len(ids)}"
            )
        return check_unseen_ids(unseen, ids, name)
    if match := _MSR_RANDOM_NAME.match(name):
        if len(ids) != MSR_NUM_CLASSES:
            raise ValueError(
                f"split {name!r} is for MSR Action3D ({MSR_NUM_CLASSES} classes), but the "
                f"label-embedding table has {len(ids)}"
            )
        generator_seed = [int(seed), int(match.group(1))]
        chosen = np.random.default_rng(generator_seed).choice(ids, MSR_NUM_UNSEEN, replace=False)
        return sorted(int(i) for i in chosen)
    known = known_split_names() + sorted(custom_splits or {})
    raise ValueError(f"unknown split name {name!r}; known split names: {known}")


def is_pooled_split(name: str) -> bool:
    """Whether ``name`` is a split of a pooled environment (cross-dataset or pooled random)."""
    return name in CROSS_DATASET_SPLITS or bool(_POOLED_RANDOM_NAME.match(name))


def pooled_split_unseen(
    name: str,
    pooled_classes: pd.DataFrame | None,
    action_ids: Sequence[int],
    *,
    seed: int = 0,
    num_unseen_per_dataset: Mapping[str, int] | None = None,
) -> list[int]:
    """Unseen pooled ids of a pooled split (:func:`is_pooled_split`).

    They need the pooled class table (:func:`pose_zsl.skeleton.pooled.pool_actions`):
    ``<source>_to_<target>`` (:data:`CROSS_DATASET_SPLITS`) makes every class of the target
    dataset that the source lacks unseen; ``pooled_random_<k>`` is the union, over the pooled
    datasets, of the unseen classes each dataset's own split ``k`` has (``msr_random_<k>`` for
    MSR Action3D, ``random_<k>`` with ``num_unseen_per_dataset[dataset]`` classes otherwise),
    so a pooled split pairs with the single-dataset runs of the same ``k``.

    Raises:
        ValueError: the environment is not pooled, lacks a dataset the split names, or
            ``num_unseen_per_dataset`` lacks a pooled dataset.
    """
    classes = _require_pool(name, pooled_classes, np.asarray(action_ids))
    if name in CROSS_DATASET_SPLITS:
        source, target = CROSS_DATASET_SPLITS[name]
        return sorted(
            set(dataset_class_ids(classes, target)) - set(dataset_class_ids(classes, source))
        )
    return _pooled_random_unseen(name, classes, num_unseen_per_dataset or {}, seed=seed)


def dataset_class_ids(classes: pd.DataFrame, dataset: str) -> list[int]:
    """Pooled ids of every class ``dataset`` has (its own and those merged into another's)."""
    has = classes["datasets"].astype(str).str.split(";").map(lambda names: dataset in names)
    return sorted(int(i) for i in classes.loc[has, "action_id"])


def _require_pool(name: str, classes: pd.DataFrame | None, ids: np.ndarray) -> pd.DataFrame:
    if classes is None or "datasets" not in classes:
        raise ValueError(
            f"split {name!r} needs a pooled environment (a PooledSourceDataset as "
            "'raw_recordings'), but the class table comes from one dataset"
        )
    if sorted(int(i) for i in classes["action_id"]) != sorted(int(i) for i in ids):
        raise ValueError(f"split {name!r}: the pooled class table and the label table differ")
    if name in CROSS_DATASET_SPLITS:
        pooled = set(";".join(classes["datasets"].astype(str)).split(";"))
        missing = [d for d in CROSS_DATASET_SPLITS[name] if d not in pooled]
        if missing:
            raise ValueError(
                f"split {name!r} needs datasets {list(CROSS_DATASET_SPLITS[name])}; the pool has "
                f"{sorted(pooled)}"
            )
    return classes


def _pooled_random_unseen(
    name: str, classes: pd.DataFrame, per_dataset: Mapping[str, int], seed: int
) -> list[int]:
    k = int(_POOLED_RANDOM_NAME.match(name).group(1))
    unseen: list[int] = []
    for dataset, own in classes.groupby("dataset", sort=True):
        table = pd.DataFrame(
            {"action_id": own["dataset_action_id"], "action_name": own["action_name"]}
        )
        if dataset == "msr_action3d":
            chosen = resolve_unseen(f"msr_random_{k}", table, seed=seed)
        elif dataset in per_dataset:
            chosen = resolve_unseen(
                f"random_{k}", table, num_unseen=int(per_dataset[dataset]), seed=seed
            )
        else:
            raise ValueError(
                f"split {name!r}: parameter 'num_unseen_per_dataset' has no entry for "
                f"{dataset!r} (has {sorted(per_dataset)})"
            )
        pooled = dict(
            zip(own["dataset_action_id"].astype(int), own["action_id"].astype(int), strict=True)
        )
        unseen += [pooled[i] for i in chosen]
    return sorted(unseen)


def target_groups(
    split: pd.DataFrame,
    classes: pd.DataFrame,
    label_embeddings: pd.DataFrame,
    min_similarity: float,
) -> pd.DataFrame:
    """The cross-dataset split's table with each target class's group, nearest source class
    and its cosine similarity (columns ``target_group``, ``counterpart``,
    ``counterpart_similarity``; null for source classes).

    Rule: a target class the source also has (same name after label normalisation) is
    ``shared``; otherwise it is ``close`` when the cosine similarity of its label vector to
    the nearest source class's is at least ``min_similarity``, else ``novel``.
    """
    if not 0.0 <= min_similarity <= 1.0:
        raise ValueError(
            f"parameter 'counterpart_similarity' must lie in [0, 1], got {min_similarity}"
        )
    source, target = CROSS_DATASET_SPLITS[str(split["split"].iloc[0])]
    source_ids, target_ids = dataset_class_ids(classes, source), dataset_class_ids(classes, target)
    ids, names = _table_ids_names(label_embeddings)
    row = {int(i): p for p, i in enumerate(ids)}
    # cosine similarity = 1 - the module's cosine distance (which also refuses NaN and zeros)
    distances = distance_matrix(embedding_matrix(label_embeddings), "cosine")
    similarity = 1.0 - distances[np.ix_([row[i] for i in target_ids], [row[i] for i in source_ids])]
    table = split.copy()
    table["target_group"] = pd.Series(pd.NA, index=table.index, dtype="string")
    table["counterpart"] = pd.Series(pd.NA, index=table.index, dtype="string")
    table["counterpart_similarity"] = np.nan
    for position, class_id in enumerate(target_ids):
        at = table.index[table["action_id"] == class_id]
        if class_id in source_ids:
            group, nearest, value = "shared", class_id, 1.0
        else:
            best = int(similarity[position].argmax())
            nearest, value = source_ids[best], float(similarity[position, best])
            group = "close" if value >= min_similarity else "novel"
        table.loc[at, ["target_group", "counterpart"]] = [group, names[row[nearest]]]
        table.loc[at, "counterpart_similarity"] = value
    return table


def check_cross_dataset_protocol(samples: pd.DataFrame, split: str, protocol: str) -> None:
    """A cross-dataset split's samples must be split by dataset: the target's all ``test``,
    every other ``train`` (pooled samples name their dataset in ``source``).

    Raises:
        ValueError: naming the parameter when ``protocol`` is not ``xdata``, or the first
            samples on the wrong side (a target sample that could reach training).
    """
    if protocol != "xdata":
        raise ValueError(
            f"split {split!r} is cross-dataset: parameter split_selection.protocol (and "
            f"stgcn_training.protocol) must be 'xdata', got {protocol!r}"
        )
    _, target = CROSS_DATASET_SPLITS[split]
    if "xdata" not in samples:
        raise ValueError(
            f"split {split!r}: the samples have no 'xdata' column; set 'target: {target}' on "
            "the pooled 'raw_recordings' catalog entry"
        )
    expected = np.where(samples["source"].astype(str) == target, "test", "train")
    wrong = samples["xdata"].astype("string").fillna("<missing>").to_numpy() != expected
    if wrong.any():
        examples = samples.loc[wrong, "sample_id"].head(5).tolist()
        raise ValueError(
            f"split {split!r}: {int(wrong.sum())} samples are on the wrong side of the "
            f"cross-dataset protocol (target {target!r} must be all 'test', the rest 'train'), "
            f"e.g. {examples}; the target dataset must not reach training or selection"
        )


def target_group_report(table: pd.DataFrame) -> str:
    """Markdown: each target class of a cross-dataset split with its group and counterpart."""
    rows = table[table["target_group"].notna()].sort_values(
        ["target_group", "counterpart_similarity"], ascending=[True, False]
    )
    lines = [
        f"### {table['split'].iloc[0]}: target classes by source counterpart",
        "",
        "| target class | group | nearest source class | cosine |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r.action_name} | {r.target_group} | {r.counterpart} | {r.counterpart_similarity:.2f} |"
        for r in rows.itertuples()
    ]
    return "\n".join(lines) + "\n"


def make_splits(
    label_embeddings: pd.DataFrame,
    split_names: Sequence[str],
    *,
    num_unseen: int = 5,
    distance: str = "cosine",
    seed: int = 0,
    min_separation_quantile: float = 0.25,
    num_pseudo_unseen: int | None = None,
    pseudo_unseen_seed: int | None = None,
    custom_splits: Mapping[str, Sequence[int]] | None = None,
    pooled_classes: pd.DataFrame | None = None,
    num_unseen_per_dataset: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """The splits table for ``split_names``: one row per (split, class); with
    ``pooled_classes``, also each class's owning ``dataset``.

    Each split's pseudo-unseen classes are ``num_pseudo_unseen`` seen classes (default: as many
    as the split has unseen classes, capped to leave at least 2 seen) drawn with
    ``pseudo_unseen_seed`` (default ``seed``).

    Raises:
        ValueError: an empty or duplicated split list, or any error of :func:`resolve_unseen`.
    """
    if isinstance(split_names, str) or not split_names:
        raise ValueError(f"parameter 'split_names' must be a non-empty list, got {split_names!r}")
    if len(set(split_names)) != len(split_names):
        raise ValueError(f"parameter 'split_names' has duplicates: {list(split_names)}")
    ids, names = _table_ids_names(label_embeddings)
    frames = []
    for split in split_names:
        if is_pooled_split(split):
            unseen = set(
                pooled_split_unseen(
                    split,
                    pooled_classes,
                    ids,
                    seed=seed,
                    num_unseen_per_dataset=num_unseen_per_dataset,
                )
            )
        else:
            unseen = set(
                resolve_unseen(
                    split,
                    label_embeddings,
                    num_unseen=num_unseen,
                    distance=distance,
                    seed=seed,
                    min_separation_quantile=min_separation_quantile,
                    custom_splits=custom_splits,
                )
            )
        seen = [int(i) for i in ids if int(i) not in unseen]
        count = num_pseudo_unseen
        if count is None:
            count = min(len(unseen), max(len(seen) - 2, 0))
        pseudo_seed = seed if pseudo_unseen_seed is None else pseudo_unseen_seed
        pseudo = set(select_pseudo_unseen(seen, count, pseudo_seed))
        frames.append(
            pd.DataFrame(
                {
                    "split": pd.Series([split] * len(ids), dtype="string"),
                    "action_id": ids,
                    "action_name": pd.Series(names, dtype="string"),
                    "role": pd.Series(
                        ["unseen" if int(i) in unseen else "seen" for i in ids], dtype="string"
                    ),
                    "pseudo_unseen": np.array([int(i) in pseudo for i in ids], dtype=bool),
                }
            )
        )
        logger.info("split %s: unseen %s, pseudo-unseen %s", split, sorted(unseen), sorted(pseudo))
    table = pd.concat(frames, ignore_index=True)
    if pooled_classes is not None and "datasets" in pooled_classes:
        owner = dict(
            zip(pooled_classes["action_id"].astype(int), pooled_classes["dataset"], strict=True)
        )
        table["dataset"] = table["action_id"].map(owner).astype("string")
    return table


def unseen_ids(splits: pd.DataFrame, split: str) -> list[int]:
    """Sorted unseen action ids of one split of a splits table."""
    rows = splits[splits["split"] == split]
    if rows.empty:
        raise ValueError(
            f"split {split!r} is not in the splits table (has {sorted(splits['split'].unique())})"
        )
    return sorted(int(i) for i in rows.loc[rows["role"] == "unseen", "action_id"])


def check_training_samples(
    splits: pd.DataFrame, samples: pd.DataFrame, protocol_column: str
) -> None:
    """Every seen class of every split must have training samples under the protocol.

    A seen class with no sample whose ``protocol_column`` is "train" would be a class the
    model is asked to know but never sees.

    Raises:
        ValueError: an unknown ``protocol_column``, or a split with such a class (named).
    """
    if protocol_column not in samples.columns:
        raise ValueError(
            f"parameter 'protocol_column' {protocol_column!r} is not a samples column "
            f"({list(samples.columns)})"
        )
    train = samples[samples[protocol_column] == "train"]
    trained = {int(i) for i in train["action_id"].dropna()}
    seen = splits[splits["role"] == "seen"]
    for split, rows in seen.groupby("split", sort=True):
        empty = rows[~rows["action_id"].astype(int).isin(trained)]
        if not empty.empty:
            listed = ", ".join(f"{int(r.action_id)} ({r.action_name})" for r in empty.itertuples())
            raise ValueError(
                f"split {split!r}: seen classes with no training samples under protocol "
                f"'{protocol_column}': {listed}"
            )


def split_report(
    splits: pd.DataFrame, label_embeddings: pd.DataFrame, distance: str = "cosine"
) -> dict[str, str]:
    """Markdown per split: each unseen class with its nearest *seen* class and their distance,
    plus the pseudo-unseen classes. Keys are split names."""
    ids, names = _table_ids_names(label_embeddings)
    position = {int(i): p for p, i in enumerate(ids)}
    distances = distance_matrix(embedding_matrix(label_embeddings), distance)
    embedder = ""
    if "embedder" in label_embeddings.columns and len(label_embeddings):
        used = sorted(label_embeddings["embedder"].astype(str).unique())
        embedder = f", embedder {', '.join(used)}"
    reports: dict[str, str] = {}
    for split, rows in splits.groupby("split", sort=False):
        unseen = sorted(int(i) for i in rows.loc[rows["role"] == "unseen", "action_id"])
        seen = sorted(int(i) for i in rows.loc[rows["role"] == "seen", "action_id"])
        pseudo = sorted(int(i) for i in rows.loc[rows["pseudo_unseen"], "action_id"])
        seen_positions = np.asarray([position[i] for i in seen])
        lines = [
            f"# Split `{split}`",
            "",
            f"{len(seen)} seen / {len(unseen)} unseen classes; distance {distance}{embedder}.",
            "",
            "| unseen id | unseen class | nearest seen class | distance |",
            "| --- | --- | --- | --- |",
        ]
        for action_id in unseen:
            row = distances[position[action_id], seen_positions]
            best = int(seen_positions[int(row.argmin())])
            lines.append(
                f"| {action_id} | {names[position[action_id]]} | {names[best]} "
                f"({int(ids[best])}) | {row.min():.3f} |"
            )
        lines += [
            "",
            "Pseudo-unseen (seen classes held out for calibration and tuning): "
            + (", ".join(f"{i} ({names[position[i]]})" for i in pseudo) or "none"),
            "",
        ]
        reports[str(split)] = "\n".join(lines)
    return reports
