"""The bad-input corpus: each case gets a specific error naming the file and the line (single-file
API) or is skipped and counted with its reason (directory ingestion)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pose_zsl.skeleton import ingest, msr
from pose_zsl.skeleton.errors import SkeletonFormatError
from pose_zsl.skeleton.ntu import SkeletonFile, load_sample, read_skeleton, write_skeleton

# Line numbers in the file written from ``skeleton_small`` (frames with 1, 2, 0, 1 bodies):
#   1 frame count | 2 body count of frame 1 | 3 info | 4 joint count | 5-29 joints
#   30 body count of frame 2 | 31 info | 32 joint count | 33-57 joints | 58 info | 59 count
#   60-84 joints | 85 body count of frame 3 (0) | 86 body count of frame 4 | 87 info
#   88 joint count | 89-113 joints
LAST_LINE = 113


def _lines(skeleton: SkeletonFile, tmp_path: Path) -> list[str]:
    path = tmp_path / "clean.skeleton"
    write_skeleton(path, skeleton)
    lines = path.read_text().split("\n")
    assert lines[-1] == "" and len(lines) == LAST_LINE + 1
    return lines[:-1]


def _replace(lines: list[str], lineno: int, text: str) -> list[str]:
    out = list(lines)
    out[lineno - 1] = text
    return out


def _field(lines: list[str], lineno: int, field: int, token: str) -> list[str]:
    tokens = lines[lineno - 1].split()
    tokens[field] = token
    return _replace(lines, lineno, " ".join(tokens))


def _join(lines: list[str]) -> bytes:
    return "\n".join(lines).encode()


def _eleven_values(lines: list[str], lineno: int) -> list[str]:
    return _replace(lines, lineno, " ".join(lines[lineno - 1].split()[:11]))


def _non_utf8(lines: list[str]) -> bytes:
    return _join(lines[:19]) + b"\n0.1 \xff\xfe" + _join(lines[19:])


# name: (make the file content from the clean lines, bad line, message fragment)
CASES: dict[str, tuple[Callable[[list[str]], bytes], int, str]] = {
    "truncated_mid_joints": (lambda ls: _join(ls[:70]), 71, "file ends after line 70"),
    "truncated_mid_line": (
        lambda ls: _join([*ls[:45], ls[45][:12]]),
        46,
        "expected 12 joint values, got 2",
    ),
    "wrong_joint_count": (
        lambda ls: _join(_replace(ls, 32, "24")),
        32,
        "expected 25 joints, got 24",
    ),
    "missing_joint_line": (
        lambda ls: _join(ls[:40] + ls[41:]),
        57,
        "expected 12 joint values, got 10",
    ),
    "joint_line_with_11_values": (lambda ls: _join(_eleven_values(ls, 10)), 10, "got 11"),
    # 11 values on one line and 13 on the next: same total, so only per-line checks see it
    "compensating_value_counts": (
        lambda ls: _join(_replace(_eleven_values(ls, 10), 11, ls[10] + " 0")),
        10,
        "got 11",
    ),
    "non_numeric_token": (
        lambda ls: _join(_field(ls, 63, 4, "12.3abc")),
        63,
        "non-numeric joint value '12.3abc'",
    ),
    "non_numeric_info": (
        lambda ls: _join(_field(ls, 58, 3, "x")),
        58,
        "non-numeric body-info value 'x'",
    ),
    "body_id_as_float": (
        lambda ls: _join(_field(ls, 31, 0, "7.2057594037931781e16")),
        31,
        "body id must be",
    ),
    "nan_coordinate": (
        lambda ls: _join(_field(ls, 100, 1, "nan")),
        100,
        "non-finite joint value 'nan'",
    ),
    "inf_coordinate": (
        lambda ls: _join(_field(ls, 7, 2, "-inf")),
        7,
        "non-finite joint value '-inf'",
    ),
    "empty_file": (lambda ls: b"", 1, "empty file"),
    "blank_file": (lambda ls: b"\n \n", 1, "empty file"),
    "zero_frames": (lambda ls: b"0\n", 1, "declares 0 frames"),
    "negative_frames": (lambda ls: b"-3\n", 1, "declares -3 frames"),
    "frame_count_too_large": (
        lambda ls: _join(_replace(ls, 1, "9")),
        LAST_LINE + 1,
        "body count of frame 5 of 9 is missing",
    ),
    "frame_count_not_integer": (lambda ls: _join(_replace(ls, 1, "4.0")), 1, "got '4.0'"),
    "body_count_not_integer": (
        lambda ls: _join(_replace(ls, 30, "two")),
        30,
        "frame 2 of 4 (one integer), got 'two'",
    ),
    "content_after_last_frame": (
        lambda ls: _join([*ls, "1"]),
        LAST_LINE + 1,
        "unexpected content after the last of 4",
    ),
    "non_utf8_bytes": (_non_utf8, 20, "byte 0xff at column 5 is not valid UTF-8"),
    "utf8_text_in_numbers": (lambda ls: _join(_field(ls, 88, 0, "二十五")), 88, "'二十五'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_skeleton_file_names_file_and_line(
    case: str, skeleton_small: SkeletonFile, tmp_path: Path
) -> None:
    make, line, fragment = CASES[case]
    path = tmp_path / f"S001C001P001R001A001_{case}.skeleton"
    path.write_bytes(make(_lines(skeleton_small, tmp_path)))
    with pytest.raises(SkeletonFormatError) as caught:
        read_skeleton(path)
    error = caught.value
    assert error.path == str(path)
    assert error.line == line, str(error)
    assert str(error).startswith(f"{path}:{line}: ")
    assert fragment in str(error)
    with pytest.raises(SkeletonFormatError):
        load_sample(path)


def test_crlf_bad_file_reports_the_same_line(skeleton_small: SkeletonFile, tmp_path: Path) -> None:
    lines = _field(_lines(skeleton_small, tmp_path), 63, 4, "oops")
    path = tmp_path / "crlf.skeleton"
    path.write_bytes("\r\n".join(lines).encode())
    with pytest.raises(SkeletonFormatError, match=r"crlf\.skeleton:63: non-numeric"):
        read_skeleton(path)


def test_trailing_blank_lines_and_missing_final_newline_are_fine(
    skeleton_small: SkeletonFile, tmp_path: Path
) -> None:
    lines = _lines(skeleton_small, tmp_path)
    for content in ("\n".join(lines), "\n".join(lines) + "\n\n\n"):
        path = tmp_path / "ok.skeleton"
        path.write_text(content)
        assert read_skeleton(path) == skeleton_small


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.skeleton"):
        read_skeleton(tmp_path / "nope.skeleton")
    missing = tmp_path / "no_such_dir"
    for call in (ingest.ingest_ntu_dir, ingest.ingest_msr_dir, ingest.ingest_stgcn_arrays):
        with pytest.raises(FileNotFoundError, match=str(missing)):
            call(missing)


def test_ingestion_skips_and_counts_every_bad_case(
    skeleton_small: SkeletonFile, tmp_path: Path
) -> None:
    lines = _lines(skeleton_small, tmp_path)
    root = tmp_path / "corpus"
    root.mkdir()
    expected_lines = {}
    for number, case in enumerate(sorted(CASES), start=1):
        make, line, _ = CASES[case]
        sample_id = f"S001C001P{number:03d}R001A001"
        (root / f"{sample_id}.skeleton").write_bytes(make(lines))
        expected_lines[sample_id] = line
    write_skeleton(root / "S001C001P099R001A002.skeleton", skeleton_small)  # one good file
    (root / "S1C1P1R1A1.skeleton").write_text("1\n0\n")  # unknown name pattern
    (root / "S001C001P002R001A061.skeleton").write_text("1\n0\n")  # not an NTU-60 action
    # on the official missing-skeleton list (content is irrelevant: never opened)
    (root / "S001C002P005R002A008.skeleton").write_text("garbage")

    result = ingest.ingest_ntu_dir(root, workers=1)

    assert result.samples["sample_id"].tolist() == ["S001C001P099R001A002"]
    assert result.sequences.num_rows == 1
    counts = result.skipped_counts()
    assert counts == {
        ingest.BAD_FILE: len(CASES),
        ingest.UNKNOWN_NAME: 1,
        ingest.OUTSIDE_DATASET: 1,
        ingest.MISSING_SKELETON: 1,
    }
    bad = result.skipped[result.skipped["category"] == ingest.BAD_FILE]
    for sample_id, reason, path in zip(bad["sample_id"], bad["reason"], bad["path"], strict=True):
        assert reason.startswith(f"{path}:{expected_lines[sample_id]}: "), reason
    unknown = result.skipped[result.skipped["category"] == ingest.UNKNOWN_NAME]
    assert "S1C1P1R1A1" in unknown["reason"].iloc[0]


MSR_ROW = "0.1 0.2 2.5 1.0"


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        (b"", 1, "empty file"),
        (("\n".join([MSR_ROW] * 19) + "\n").encode(), 19, "not a whole number of 20-joint frames"),
        (("\n".join([MSR_ROW] * 5 + ["0.1 0.2 2.5"] + [MSR_ROW] * 14)).encode(), 6, "got 3"),
        (("\n".join([MSR_ROW] * 7 + ["0.1 zz 2.5 1"] + [MSR_ROW] * 12)).encode(), 8, "'zz'"),
        (("\n".join([MSR_ROW] * 2 + ["0.1 nan 2.5 1"] + [MSR_ROW] * 17)).encode(), 3, "'nan'"),
        (("\n".join([MSR_ROW] * 3) + "\n\xe9\n").encode("latin1"), 4, "not valid UTF-8"),
    ],
)
def test_bad_msr_file_names_file_and_line(
    content: bytes, line: int, fragment: str, tmp_path: Path
) -> None:
    path = tmp_path / "a01_s01_e01_skeleton3D.txt"
    path.write_bytes(content)
    with pytest.raises(SkeletonFormatError) as caught:
        msr.load_sample(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert fragment in str(caught.value)


def test_msr_sequence_without_valid_frame(tmp_path: Path) -> None:
    path = tmp_path / "a01_s01_e01_skeleton3D.txt"
    path.write_text("\n".join(["0 0 0 0"] * 40) + "\n")
    with pytest.raises(SkeletonFormatError, match="no valid frame"):
        msr.load_sample(path)
    np.testing.assert_array_equal(msr.read_msr(path), np.zeros((2, 20, 4)))


def test_msr_unknown_name(tmp_path: Path) -> None:
    for name in ("a1_s01_e01_skeleton3D.txt", "a21_s01_e01_skeleton3D.txt", "x.txt"):
        with pytest.raises(SkeletonFormatError, match=name.replace(".", r"\.")):
            msr.parse_msr_name(tmp_path / name)
