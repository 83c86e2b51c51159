"""Packaged label descriptions and their loader."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
import pytest

from pose_zsl.skeleton import msr, ntu_tables, utkinect
from pose_zsl.text.descriptions import (
    DATASET_ALIASES,
    DESCRIPTIONS_PATH,
    DescriptionsError,
    class_descriptions,
    load_descriptions,
)

OFFICIAL_NAMES = {
    "ntu120": ntu_tables.action_names(120),
    "msr_action3d": msr.action_names(),
    "utkinect": utkinect.action_names(),
}


# --- the shipped file ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped() -> pd.DataFrame:
    return load_descriptions()


@pytest.mark.parametrize("dataset", sorted(OFFICIAL_NAMES))
def test_shipped_file_covers_every_class_with_three_distinct_texts(
    shipped: pd.DataFrame, dataset: str
) -> None:
    rows = shipped[shipped["dataset"] == dataset]
    assert sorted(rows["action_id"].unique()) == list(range(1, len(OFFICIAL_NAMES[dataset]) + 1))
    for action_id, texts in rows.groupby("action_id")["text"]:
        cleaned = [text.strip() for text in texts]
        assert all(cleaned), (dataset, action_id)
        assert len(set(cleaned)) >= 3, (dataset, action_id, cleaned)


def test_shipped_descriptions_go_beyond_the_class_name(shipped: pd.DataFrame) -> None:
    """At most one description per class repeats the official name as a phrase."""
    offenders = []
    for (dataset, action_id), texts in shipped.groupby(["dataset", "action_id"])["text"]:
        name = OFFICIAL_NAMES[dataset][action_id - 1].lower()
        pattern = re.compile(rf"\b{re.escape(name)}\b")
        if sum(bool(pattern.search(text.lower())) for text in texts) > 1:
            offenders.append((dataset, action_id, name))
    assert offenders == []


def test_shipped_file_is_plain_csv_with_the_documented_header() -> None:
    with DESCRIPTIONS_PATH.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["action_id", "dataset", "text"]
    assert all(len(row) == 3 for row in rows[1:])
    assert len(load_descriptions()) == len(rows) - 1


# --- refused input ------------------------------------------------------------------------------
def utkinect_rows() -> list[list[str]]:
    """A valid, complete description set (UTKinect is the smallest): class k on line k + 1."""
    return [[str(i), "utkinect", f"Description {i}, moving the arms."] for i in range(1, 11)]


def write_csv(tmp_path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    path = tmp_path / "descriptions.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header or ["action_id", "dataset", "text"])
        writer.writerows(rows)
    return path


def test_a_valid_small_file_loads(tmp_path: Path) -> None:
    frame = load_descriptions(write_csv(tmp_path, utkinect_rows()))
    assert frame["action_id"].tolist() == list(range(1, 11))
    assert set(frame["dataset"]) == {"utkinect"}


def test_missing_column_is_refused_on_line_1(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [row[:2] for row in utkinect_rows()], ["action_id", "dataset"])
    with pytest.raises(DescriptionsError, match=r"descriptions\.csv: line 1: .*'text'"):
        load_descriptions(path)


@pytest.mark.parametrize(
    ("row_index", "field", "value", "message"),
    [
        (3, 2, "   ", r"line 5: empty text"),
        (3, 2, "", r"line 5: empty text"),
        (6, 0, "seven", r"line 8: action_id 'seven' is not an integer"),
        (6, 0, "7.0", r"line 8: action_id '7.0' is not an integer"),
        (0, 1, "kinetics", r"line 2: unknown dataset 'kinetics'"),
        (9, 0, "11", r"line 11: unknown action_id 11 for utkinect"),
        (9, 0, "0", r"line 11: unknown action_id 0 for utkinect"),
    ],
)
def test_bad_row_is_refused_naming_file_and_line(
    tmp_path: Path, row_index: int, field: int, value: str, message: str
) -> None:
    rows = utkinect_rows()
    rows.append(list(rows[row_index]))  # keep every class covered so only the bad row fails
    rows[row_index][field] = value
    rows[-1][2] = "An extra description."
    path = write_csv(tmp_path, rows)
    with pytest.raises(DescriptionsError, match=rf"descriptions\.csv: {message}"):
        load_descriptions(path)


def test_missing_class_is_refused_naming_dataset_id_and_name(tmp_path: Path) -> None:
    rows = [row for row in utkinect_rows() if row[0] != "6"]
    with pytest.raises(
        DescriptionsError, match=r"descriptions\.csv: utkinect action 6 \('throw'\)"
    ):
        load_descriptions(write_csv(tmp_path, rows))


def test_repeated_description_is_refused_naming_both_lines(tmp_path: Path) -> None:
    rows = utkinect_rows()
    rows.append(list(rows[2]))
    with pytest.raises(DescriptionsError, match=r"line 12: repeats the description on line 4"):
        load_descriptions(write_csv(tmp_path, rows))


def test_line_numbers_count_physical_lines(tmp_path: Path) -> None:
    """A quoted multi-line text and a blank line must not shift later line numbers."""
    path = tmp_path / "descriptions.csv"
    lines = ["action_id,dataset,text", '1,utkinect,"Two\nlines."', ""]
    lines += [f"{i},utkinect,Text {i}." for i in range(2, 11)] + ["3,utkinect,"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # header 1, the two-line record 2-3, blank 4, ids 2..10 on 5..13, the bad row on 14.
    with pytest.raises(DescriptionsError, match=r"line 14: empty text"):
        load_descriptions(path)


# --- per-dataset lookup -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("alias", "target"),
    [
        ("ntu60", "ntu120"),
        ("ntu120", "ntu120"),
        ("synthetic_ntu60", "ntu120"),
        ("stgcn_arrays", "ntu120"),
        ("msr_action3d", "msr_action3d"),
        ("utkinect", "utkinect"),
    ],
)
def test_aliases_resolve_to_their_description_set(
    alias: str, target: str, shipped: pd.DataFrame
) -> None:
    assert DATASET_ALIASES[alias] == target
    count = len(OFFICIAL_NAMES[target])
    last = count - 1
    expected = shipped[(shipped["dataset"] == target) & (shipped["action_id"] == count)]
    assert class_descriptions(alias, count)[last] == expected["text"].tolist()


def test_ntu60_gets_the_first_60_classes_with_0_based_ids(shipped: pd.DataFrame) -> None:
    texts = class_descriptions("ntu60", 60)
    assert sorted(texts) == list(range(60))
    ntu = shipped[shipped["dataset"] == "ntu120"]
    for class_id in (0, 59):
        expected = ntu.loc[ntu["action_id"] == class_id + 1, "text"].tolist()
        assert texts[class_id] == expected
    assert texts[0] != texts[59]


def test_class_ids_are_0_based_for_a_custom_file(tmp_path: Path) -> None:
    texts = class_descriptions("utkinect", 10, write_csv(tmp_path, utkinect_rows()))
    assert sorted(texts) == list(range(10))
    assert texts[0] == ["Description 1, moving the arms."]
    assert texts[9] == ["Description 10, moving the arms."]


def test_unknown_dataset_lists_the_known_names() -> None:
    with pytest.raises(DescriptionsError, match=r"'kinetics'.*'msr_action3d'.*'utkinect'"):
        class_descriptions("kinetics", 10)


def test_too_many_classes_is_refused() -> None:
    with pytest.raises(DescriptionsError, match=r"num_classes=21 .*1\.\.20"):
        class_descriptions("msr_action3d", 21)


def test_file_without_the_requested_set_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DescriptionsError, match=r"no descriptions for msr_action3d"):
        class_descriptions("msr_action3d", 20, write_csv(tmp_path, utkinect_rows()))
