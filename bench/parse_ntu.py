"""NTU ``.skeleton`` parsing speed: our vectorised reader vs a line-by-line reader.

Both read the same files, every field of every line:

* ours: :func:`pose_zsl.skeleton.ntu.read_skeleton` (whole-file read, then one pass of a
  compiled numba kernel over the bytes; arrays out);
* baseline: the reader of the original ST-GCN tools (``tools/utils/ntu_read_skeleton.py``),
  written out below: a ``readline`` loop, ``float()`` per token and a dict per body and joint.

Before timing, both readers' x y z (and every other joint field) are checked to be equal on
every file. Rounds alternate between the readers so that load from other processes hits both
alike; the median rate over rounds is reported. The last line is
``RESULT parse_speedup=<ratio>`` (ours / baseline, files per second).

Usage: ``python bench/parse_ntu.py [--dir DIR] [--rounds 5] [--repeat 2]``; ``DIR`` defaults to
the real samples in ``../shared/data/ntu_samples``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pose_zsl.skeleton.ntu import read_skeleton  # noqa: E402

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "ntu_samples"


def baseline_read_skeleton(file: str | Path) -> dict:
    """The ST-GCN reader, as published (``tools/utils/ntu_read_skeleton.py``)."""
    with open(file) as f:
        skeleton_sequence = {}
        skeleton_sequence["numFrame"] = int(f.readline())
        skeleton_sequence["frameInfo"] = []
        for _ in range(skeleton_sequence["numFrame"]):
            frame_info = {}
            frame_info["numBody"] = int(f.readline())
            frame_info["bodyInfo"] = []
            for _ in range(frame_info["numBody"]):
                body_info_key = [
                    "bodyID", "clipedEdges", "handLeftConfidence", "handLeftState",
                    "handRightConfidence", "handRightState", "isResticted", "leanX", "leanY",
                    "trackingState",
                ]  # fmt: skip
                values = f.readline().split()
                body_info = {k: float(v) for k, v in zip(body_info_key, values, strict=False)}
                body_info["numJoint"] = int(f.readline())
                body_info["jointInfo"] = []
                for _ in range(body_info["numJoint"]):
                    joint_info_key = [
                        "x", "y", "z", "depthX", "depthY", "colorX", "colorY", "orientationW",
                        "orientationX", "orientationY", "orientationZ", "trackingState",
                    ]  # fmt: skip
                    values = f.readline().split()
                    joint_info = {k: float(v) for k, v in zip(joint_info_key, values, strict=False)}
                    body_info["jointInfo"].append(joint_info)
                frame_info["bodyInfo"].append(body_info)
            skeleton_sequence["frameInfo"].append(frame_info)
    return skeleton_sequence


def _baseline_joints(sequence: dict) -> np.ndarray:
    """All joint records of the baseline's output, (B, 25, 12) float32 in file order."""
    return np.array(
        [
            [list(joint.values()) for joint in body["jointInfo"]]
            for frame in sequence["frameInfo"]
            for body in frame["bodyInfo"]
        ],
        dtype=np.float32,
    ).reshape(-1, 25, 12)


def check_equal(files: list[Path]) -> None:
    for path in files:
        ours = read_skeleton(path)
        theirs = baseline_read_skeleton(path)
        joints = _baseline_joints(theirs)
        if not np.array_equal(ours.joints[..., :3], joints[..., :3]):
            raise SystemExit(f"x y z differ between the readers on {path}")
        if not np.array_equal(ours.joints, joints):
            raise SystemExit(f"joint fields differ between the readers on {path}")
        counts = [frame["numBody"] for frame in theirs["frameInfo"]]
        if ours.bodies_per_frame.tolist() != counts:
            raise SystemExit(f"body counts differ between the readers on {path}")


def rate(reader: Callable[[Path], object], files: list[Path], repeat: int) -> float:
    """Files per second of one pass of ``repeat`` x ``files``."""
    start = time.perf_counter()
    for _ in range(repeat):
        for path in files:
            reader(path)
    return repeat * len(files) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=2, help="passes over the files per round")
    args = parser.parse_args()

    files = sorted(args.dir.glob("*.skeleton"))
    if not files:
        raise SystemExit(f"no .skeleton files in {args.dir}")
    megabytes = sum(path.stat().st_size for path in files) / 1e6
    print(f"{len(files)} files, {megabytes:.1f} MB in {args.dir}")
    check_equal(files)
    print("both readers give equal x y z (and all 12 joint fields) on every file")

    readers = {"ours": read_skeleton, "baseline": baseline_read_skeleton}
    for reader in readers.values():  # warm-up: imports, caches
        reader(files[0])
    rates: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(args.rounds):
        for name, reader in readers.items():
            rates[name].append(rate(reader, files, args.repeat))
    per_mb = megabytes / len(files)
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:>8}: {median:8.1f} files/s  {median * per_mb:7.1f} MB/s  "
              f"(rounds: {', '.join(f'{v:.1f}' for v in values)})")  # fmt: skip
    speedup = statistics.median(rates["ours"]) / statistics.median(rates["baseline"])
    print(f"RESULT parse_speedup={speedup:.2f}")


if __name__ == "__main__":
    main()
