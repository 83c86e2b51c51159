"""Short descriptions of what the body does in each action class, as extra label text.

An official class name ("staggering", "draw x") says little to a language model about the
motion; a few plain sentences (which body parts move, how, where, with what object) give the
label embedding more to go on. The packaged file ``data/label_descriptions.csv`` has columns
``action_id,dataset,text``: the 1-based official action id, the description set (``ntu120``,
``msr_action3d`` or ``utkinect``) and one sentence; a class has several rows. NTU RGB+D 60 uses
the first 60 classes of the ``ntu120`` set, since NTU-120 extends NTU-60 with the same ids.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from pose_zsl.skeleton import msr, ntu_tables, utkinect

DESCRIPTIONS_PATH: Path = Path(__file__).parent / "data" / "label_descriptions.csv"
COLUMNS: tuple[str, ...] = ("action_id", "dataset", "text")
_INTEGER = re.compile(r"[+-]?[0-9]+")

#: Pipeline dataset name -> the description set it uses.
DATASET_ALIASES: dict[str, str] = {
    "ntu60": "ntu120",
    "ntu120": "ntu120",
    "synthetic_ntu60": "ntu120",
    "stgcn_arrays": "ntu120",
    "msr_action3d": "msr_action3d",
    "utkinect": "utkinect",
}


class DescriptionsError(ValueError):
    """A description file that cannot be used; the message names the file and line."""


def description_sets() -> dict[str, list[str]]:
    """Description set -> official class names in 0-based class order (the class counts)."""
    return {
        "ntu120": ntu_tables.action_names(120),
        "msr_action3d": msr.action_names(),
        "utkinect": utkinect.action_names(),
    }


def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first physical line number, fields) of each non-blank CSV record; the header is line 1.

    Line numbers come from the csv reader rather than row counting, so that a quoted field
    spanning several lines does not shift the numbers reported for later rows.
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            start = 1
            for fields in reader:
                if any(field.strip() for field in fields):
                    yield start, fields
                start = reader.line_num + 1
    except UnicodeDecodeError as error:
        raise DescriptionsError(f"{path}: not UTF-8 text ({error.reason})") from None


def _column_index(path: Path, header: list[str]) -> dict[str, int]:
    names = [name.strip() for name in header]
    missing = [column for column in COLUMNS if column not in names]
    if missing:
        raise DescriptionsError(f"{path}: line 1: missing column(s) {missing}; header is {names}")
    return {column: names.index(column) for column in COLUMNS}


def _parse_row(
    path: Path, line: int, fields: list[str], index: dict[str, int], sets: dict[str, list[str]]
) -> tuple[int, str, str]:
    where = f"{path}: line {line}"
    value = {c: fields[i].strip() if i < len(fields) else "" for c, i in index.items()}
    dataset = value["dataset"]
    if dataset not in sets:
        raise DescriptionsError(f"{where}: unknown dataset {dataset!r}; known: {sorted(sets)}")
    # Not int(): it also accepts "1_0" and non-ASCII digits.
    if not _INTEGER.fullmatch(value["action_id"]):
        raise DescriptionsError(f"{where}: action_id {value['action_id']!r} is not an integer")
    action_id = int(value["action_id"])
    count = len(sets[dataset])
    if not 1 <= action_id <= count:
        raise DescriptionsError(
            f"{where}: unknown action_id {action_id} for {dataset} (ids are 1..{count})"
        )
    if not value["text"]:
        raise DescriptionsError(f"{where}: empty text for {dataset} action {action_id}")
    return action_id, dataset, value["text"]


def _check_complete(path: Path, frame: pd.DataFrame, sets: dict[str, list[str]]) -> None:
    """Every class of every description set present in the file has at least one text."""
    for dataset in sorted(frame["dataset"].unique()):
        described = set(frame.loc[frame["dataset"] == dataset, "action_id"])
        names = sets[dataset]
        missing = [i for i in range(1, len(names) + 1) if i not in described]
        if missing:
            first = missing[0]
            more = f" ({len(missing) - 1} more classes missing)" if len(missing) > 1 else ""
            name = names[first - 1]
            raise DescriptionsError(
                f"{path}: {dataset} action {first} ({name!r}) has no description{more}"
            )


def load_descriptions(path: str | Path | None = None) -> pd.DataFrame:
    """Read and validate a description file (the packaged one when ``path`` is None).

    Returns one row per description, in file order: ``action_id`` (1-based int), ``dataset``
    and ``text`` (surrounding whitespace stripped). Extra columns are ignored; blank lines are
    skipped.

    Raises:
        DescriptionsError: the file is empty or not UTF-8, lacks a column, or a row has an
            unknown dataset, a non-integer or out-of-range action_id, an empty text, or repeats
            an earlier row; or a class of a description set present in the file has none.
        FileNotFoundError: ``path`` does not exist.
    """
    path = DESCRIPTIONS_PATH if path is None else Path(path)
    sets = description_sets()
    records = _records(path)
    header = next(records, None)
    if header is None:
        raise DescriptionsError(f"{path}: empty file; expected header {','.join(COLUMNS)}")
    index = _column_index(path, header[1])
    rows: list[tuple[int, str, str]] = []
    first_line: dict[tuple[int, str, str], int] = {}
    for line, fields in records:
        row = _parse_row(path, line, fields, index, sets)
        if row in first_line:
            # The same sentence twice would silently double its weight in the class's mean.
            raise DescriptionsError(
                f"{path}: line {line}: repeats the description on line {first_line[row]}"
            )
        first_line[row] = line
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(COLUMNS)).astype({"action_id": "int64"})
    _check_complete(path, frame, sets)
    return frame


def resolve_dataset(dataset: str) -> str:
    """The description set a pipeline dataset name uses (see :data:`DATASET_ALIASES`)."""
    if dataset not in DATASET_ALIASES:
        raise DescriptionsError(
            f"no label descriptions for dataset {dataset!r}; known: {sorted(DATASET_ALIASES)}"
        )
    return DATASET_ALIASES[dataset]


def class_descriptions(
    dataset: str, num_classes: int, path: str | Path | None = None
) -> dict[int, list[str]]:
    """0-based class id -> its descriptions (file order), for the first ``num_classes`` classes.

    Raises:
        DescriptionsError: unknown ``dataset``, ``num_classes`` outside 1..(classes in the set),
            or the file has no descriptions for the dataset's set (or is invalid, see
            :func:`load_descriptions`).
    """
    target = resolve_dataset(dataset)
    available = len(description_sets()[target])
    if not 1 <= num_classes <= available:
        raise DescriptionsError(
            f"num_classes={num_classes} for dataset {dataset!r}: the {target} description set "
            f"has classes 1..{available}"
        )
    frame = load_descriptions(path)
    chosen = frame[frame["dataset"] == target]
    if chosen.empty:
        source = DESCRIPTIONS_PATH if path is None else Path(path)
        raise DescriptionsError(f"{source}: no descriptions for {target} (dataset {dataset!r})")
    by_class = chosen.groupby("action_id", sort=True)["text"].agg(list)
    return {action_id - 1: list(by_class[action_id]) for action_id in range(1, num_classes + 1)}


def action_table_descriptions(
    actions: pd.DataFrame, path: str | Path | None = None
) -> dict[int, list[str]]:
    """Class id -> descriptions for an ``actions`` table: one dataset's (column ``dataset``),
    or a pooled table's, where each class takes its owning dataset's descriptions
    (``dataset_action_id``)."""
    if "dataset_action_id" not in actions:
        return class_descriptions(str(actions["dataset"].iloc[0]), len(actions), path)
    result: dict[int, list[str]] = {}
    for dataset, rows in actions.groupby("dataset", sort=True):
        own = class_descriptions(str(dataset), int(rows["dataset_action_id"].max()) + 1, path)
        for action_id, own_id in zip(rows["action_id"], rows["dataset_action_id"], strict=True):
            result[int(action_id)] = own[int(own_id)]
    return result
