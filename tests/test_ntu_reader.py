"""NTU RGB+D .skeleton reader and writer on the real sample files and on constructed ones."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pytest

from pose_zsl.skeleton import ntu
from pose_zsl.skeleton.errors import SkeletonFormatError
from pose_zsl.skeleton.ntu import (
    SampleName,
    SkeletonFile,
    load_sample,
    parse_sample_name,
    read_skeleton,
    write_skeleton,
)


def _sources_table(root: Path) -> dict[str, tuple[int, int]]:
    """file -> (frames, max bodies per frame), from the table in SOURCES.md."""
    rows = {}
    for line in (root / "SOURCES.md").read_text().splitlines():
        match = re.match(r"\| ((?:crlf_variant/)?S\d{3}C\d{3}P\d{3}R\d{3}A\d{3}\.skeleton) \|"
                         r" A\d{3} \| (\d+) \| (\d+) \|", line)  # fmt: skip
        if match:
            rows[match.group(1)] = (int(match.group(2)), int(match.group(3)))
    return rows


def test_sources_table_lists_every_file(skeleton_ntu_samples: Path) -> None:
    table = _sources_table(skeleton_ntu_samples)
    on_disk = {
        str(p.relative_to(skeleton_ntu_samples)) for p in skeleton_ntu_samples.rglob("*.skeleton")
    }
    assert len(table) == 40
    assert set(table) == on_disk


def test_frame_and_body_counts_match_sources(skeleton_ntu_samples: Path) -> None:
    for name, (frames, max_bodies) in _sources_table(skeleton_ntu_samples).items():
        skeleton = read_skeleton(skeleton_ntu_samples / name)
        assert skeleton.num_frames == frames, name
        assert skeleton.bodies_per_frame.shape == (frames,)
        assert int(skeleton.bodies_per_frame.max()) == max_bodies, name
        num_bodies = int(skeleton.bodies_per_frame.sum())
        assert skeleton.body_ids.shape == (num_bodies,)
        assert skeleton.body_ids.dtype == np.int64
        assert skeleton.body_info.shape == (num_bodies, 9)
        assert skeleton.body_frame.shape == (num_bodies,)
        assert skeleton.joints.shape == (num_bodies, 25, 12)
        assert skeleton.joints.dtype == np.float32
        # facts from SOURCES.md: tracking state is 2 or 1, leaf joints have a zero quaternion
        assert set(np.unique(skeleton.joints[..., 11]).tolist()) <= {1.0, 2.0}
        leaves = [3, 15, 19, 21, 22, 23, 24]  # head, feet, hand tips, thumbs (0-based)
        assert not skeleton.joints[:, leaves, 7:11].any()


def test_body_ids_are_exact_integers(skeleton_ntu_samples: Path) -> None:
    path = skeleton_ntu_samples / "S001C001P001R001A028.skeleton"
    skeleton = read_skeleton(path)
    # the noise body ...31781 is listed first (SOURCES.md); beyond 2**53 a float would round it
    assert skeleton.body_ids[0] == 72057594037931781
    assert 72057594037931781 > 2**53 and float(72057594037931781) != 72057594037931781
    lines = path.read_text().splitlines()
    first_ids = [int(lines[2].split()[0]), int(lines[29].split()[0])]
    assert skeleton.body_ids[:2].tolist() == first_ids
    assert skeleton.body_frame[:4].tolist() == [0, 0, 1, 1]


def test_every_field_of_a_line(skeleton_ntu_samples: Path) -> None:
    path = skeleton_ntu_samples / "S001C001P001R001A028.skeleton"
    skeleton = read_skeleton(path)
    lines = path.read_text().splitlines()
    info = [float(v) for v in lines[2].split()[1:]]
    assert skeleton.body_info[0].tolist() == info
    joint = np.array([float(v) for v in lines[4].split()], dtype=np.float32)
    np.testing.assert_array_equal(skeleton.joints[0, 0], joint)
    assert lines[4].startswith("2.074709 -0.2965012 3.501876")


@functools.cache
def _line_by_line(path: Path) -> SkeletonFile:
    return ntu._parse_slow(path.read_text(), path)


def test_fast_path_equals_line_by_line_parser(skeleton_ntu_samples: Path) -> None:
    for path in sorted(skeleton_ntu_samples.glob("*.skeleton")):
        fast = ntu._parse_fast(path.read_bytes())
        assert fast is not None, f"the compiled parser gave up on a clean file {path.name}"
        assert fast == _line_by_line(path), path.name


def test_crlf_variant_equals_lf(skeleton_ntu_samples: Path) -> None:
    crlf = skeleton_ntu_samples / "crlf_variant" / "S001C001P001R001A001.skeleton"
    assert b"\r\n" in crlf.read_bytes()
    assert read_skeleton(crlf) == read_skeleton(skeleton_ntu_samples / crlf.name)


def test_writer_reproduces_real_files_byte_for_byte(
    skeleton_ntu_samples: Path, tmp_path: Path
) -> None:
    out = tmp_path / "copy.skeleton"
    for path in sorted(skeleton_ntu_samples.glob("*.skeleton")):
        write_skeleton(out, read_skeleton(path))
        assert out.read_bytes() == path.read_bytes(), path.name
    crlf = skeleton_ntu_samples / "crlf_variant" / "S001C001P001R001A001.skeleton"
    write_skeleton(out, read_skeleton(crlf), newline="\r\n")
    assert out.read_bytes() == crlf.read_bytes()


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_round_trip_of_constructed_file(
    skeleton_small: SkeletonFile, tmp_path: Path, newline: str
) -> None:
    path = tmp_path / "S001C001P001R001A001.skeleton"
    write_skeleton(path, skeleton_small, newline=newline)
    back = read_skeleton(path)
    assert back == skeleton_small
    assert back.body_ids[2] == 72057594037931781
    text = path.read_bytes().decode()
    assert text.split(newline)[:2] == ["4", "1"]
    assert text.count("\r\n") == (text.count("\n") if newline == "\r\n" else 0)


def test_round_trip_keeps_tiny_and_large_values(
    skeleton_small: SkeletonFile, tmp_path: Path
) -> None:
    skeleton_small.joints[0, 0, :4] = [1.5e-7, -2.016883e-05, 1604.517, 123456.7]
    path = tmp_path / "x.skeleton"
    write_skeleton(path, skeleton_small)
    assert read_skeleton(path) == skeleton_small
    assert "E-07" in path.read_text()


def test_round_trip_of_random_values_of_every_magnitude(
    skeleton_small: SkeletonFile, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    shape = skeleton_small.joints.shape
    scale = 10.0 ** rng.integers(-12, 12, size=shape)
    skeleton_small.joints[:] = (rng.normal(size=shape) * scale).astype(np.float32)
    skeleton_small.joints[0, :2] = -0.0
    # info values as the SDK writes them, 7 significant digits (values needing 17 digits also
    # round-trip, through the line-by-line parser: test_float64_info_values_round_trip)
    info = rng.normal(size=skeleton_small.body_info.shape) * 1e-6
    skeleton_small.body_info[:] = [[float(f"{v:.7g}") for v in row] for row in info.tolist()]
    path = tmp_path / "x.skeleton"
    write_skeleton(path, skeleton_small)
    assert read_skeleton(path) == skeleton_small
    assert ntu._parse_fast(path.read_bytes()) == skeleton_small  # not via the slow parser
    text = path.read_text()
    assert " -0 " not in text and "e" not in text


def test_float64_info_values_round_trip(skeleton_small: SkeletonFile, tmp_path: Path) -> None:
    skeleton_small.body_info[:, 6] = [0.1 + 1e-17 * k for k in range(4)]
    skeleton_small.body_info[0, 7] = -1.0006740097302289e-06
    path = tmp_path / "x.skeleton"
    write_skeleton(path, skeleton_small)
    assert read_skeleton(path) == skeleton_small


def test_writer_rejects_inconsistent_skeleton(skeleton_small: SkeletonFile, tmp_path: Path) -> None:
    skeleton_small.joints[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        write_skeleton(tmp_path / "x.skeleton", skeleton_small)
    skeleton_small.joints[1, 2, 0] = 0
    skeleton_small.bodies_per_frame[0] = 2
    with pytest.raises(ValueError, match="bodies_per_frame"):
        write_skeleton(tmp_path / "x.skeleton", skeleton_small)


def test_frames_without_bodies_are_valid(skeleton_small: SkeletonFile, tmp_path: Path) -> None:
    path = tmp_path / "x.skeleton"
    write_skeleton(path, skeleton_small)
    assert read_skeleton(path).bodies_per_frame.tolist() == [1, 2, 0, 1]


def test_parse_sample_name() -> None:
    assert parse_sample_name("S017C003P020R001A059") == SampleName(17, 3, 20, 1, 59)
    parsed = parse_sample_name(Path("/x/S001C002P003R002A120.skeleton"))
    assert parsed == SampleName(1, 2, 3, 2, 120)
    assert str(parsed) == "S001C002P003R002A120"


@pytest.mark.parametrize(
    "name", ["S001C002P003R002A13.skeleton", "s001c002p003r002a013", "A013.skeleton",
             "S001C002P003R002A013.txt", "S000C002P003R002A013"],
)  # fmt: skip
def test_parse_sample_name_rejects_unknown_patterns(name: str) -> None:
    with pytest.raises(SkeletonFormatError) as caught:
        parse_sample_name(name)
    assert name in str(caught.value)
    assert caught.value.path == name and caught.value.line is None


def test_load_sample_shape_and_values(skeleton_ntu_samples: Path) -> None:
    path = skeleton_ntu_samples / "S001C001P001R001A001.skeleton"
    array = load_sample(path)
    skeleton = read_skeleton(path)
    assert array.shape == (103, 2, 25, 3) and array.dtype == np.float32
    np.testing.assert_array_equal(array[:, 0], skeleton.joints[:, :, :3])
    assert not array[:, 1].any()
    assert load_sample(path, max_bodies=1).shape == (103, 1, 25, 3)
    assert load_sample(path, max_bodies=4).shape == (103, 4, 25, 3)


def test_load_sample_without_denoising_follows_stgcn(skeleton_ntu_samples: Path) -> None:
    path = skeleton_ntu_samples / "S001C001P001R001A028.skeleton"
    skeleton = read_skeleton(path)
    raw = load_sample(path, denoise=False)
    assert raw.shape == (108, 2, 25, 3)
    # st-gcn read_xyz: the m-th body listed in a frame goes to slot m (here: noise body first)
    np.testing.assert_array_equal(raw[:, 0], skeleton.joints[0::2, :, :3])
    np.testing.assert_array_equal(raw[:, 1], skeleton.joints[1::2, :, :3])
    assert skeleton.body_ids[0] == 72057594037931781
