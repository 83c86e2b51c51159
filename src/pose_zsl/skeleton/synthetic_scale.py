"""NTU RGB+D 120-sized synthetic sets for the scale benchmark (``bench/scale.py``).

The real NTU RGB+D 120 (114,480 recordings) is not reachable here, so the benchmark builds a set
of the same size and shape from :mod:`pose_zsl.skeleton.synthetic`, written as real
``.skeleton`` files and read by the same reader:

* names: NTU-120's grid (setups 1-32, cameras 1-3, performers 1-106, replications 1-2,
  actions 1-120), 954 names per action at full size (159 setup/performer pairs x 3 cameras x
  2 replications); a smaller set is a seeded random subset of the full one;
* motions: the NTU-60 generator has motions for actions 1-60; actions 61-120 borrow one
  (:func:`motion_template`), two-person ones from the two-person actions 50-60, so the mutual
  actions A050-A060 and A106-A120 have 2 bodies and every other action 1;
* lengths: drawn from a log-normal fitted to NTU's (median 80 frames, mean about 85, clipped
  to 30-300) by resampling the generated frames;
* corrupt files (truncated, empty, a body with 24 joints) replace chosen names, so the
  ingestion's skip accounting can be checked exactly.

Disk: a generated file is about 3 KB per body and frame (some 280 KB on average), so 114,480
unique files take about 33 GB. ``unique`` limits how many distinct files are written; the other
names are hard links to them (same action), which costs no disk. The parser then reads the same
bytes several times (from the page cache), so the benchmark measures the chain's own CPU and
memory cost, not the disk's read speed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from os import PathLike
from pathlib import Path

import numpy as np

from pose_zsl.skeleton.ntu import SampleName, SkeletonFile, write_skeleton
from pose_zsl.skeleton.synthetic import generate_skeleton_file

NTU120_SIZE = 114_480
NUM_SETUPS, NUM_CAMERAS, NUM_PERFORMERS, NUM_REPLICATIONS, NUM_ACTIONS = 32, 3, 106, 2, 120
#: (setup, performer) pairs per action in the full grid: 159 x 3 cameras x 2 replications = 954
PAIRS_PER_ACTION = NTU120_SIZE // (NUM_ACTIONS * NUM_CAMERAS * NUM_REPLICATIONS)
#: NTU's mutual (two-person) actions, 1-based
MUTUAL_ACTIONS = frozenset((*range(50, 61), *range(106, 121)))
MEDIAN_FRAMES, FRAMES_SIGMA, MIN_FRAMES, MAX_FRAMES = 80.0, 0.35, 30, 300
#: The corruptions :func:`write_scale_set` applies, in turn
CORRUPTIONS = ("truncated", "empty", "wrong_joint_count")
OK = "ok"


def ntu120_names(n: int = NTU120_SIZE, seed: int = 0) -> list[SampleName]:
    """``n`` distinct NTU-120 names, sorted. ``n == 114,480`` gives the whole grid; fewer: a
    seeded random subset of it (every action about equally often).

    Raises:
        ValueError: ``n`` is not in 1..114,480.
    """
    if not 1 <= n <= NTU120_SIZE:
        raise ValueError(f"n must be in 1..{NTU120_SIZE}, got {n}")
    names = []
    for action in range(1, NUM_ACTIONS + 1):
        for k in range(PAIRS_PER_ACTION):
            # k % 32 and k + 7 * action (mod 106) never repeat a pair for k < 32 * 53
            setup = 1 + k % NUM_SETUPS
            performer = 1 + (k + 7 * action) % NUM_PERFORMERS
            for camera in range(1, NUM_CAMERAS + 1):
                for replication in range(1, NUM_REPLICATIONS + 1):
                    names.append(SampleName(setup, camera, performer, replication, action))
    if n < len(names):
        keep = np.random.default_rng(seed).choice(len(names), size=n, replace=False)
        names = [names[i] for i in keep]
    return sorted(names, key=str)


def motion_template(action: int) -> int:
    """The NTU-60 generator action (1-60) whose motion ``action`` (1-120) borrows: itself up to
    60, a two-person action (50-60) for the mutual actions 106-120, else one of 1-49."""
    if not 1 <= action <= NUM_ACTIONS:
        raise ValueError(f"action must be in 1..{NUM_ACTIONS}, got {action}")
    if action <= 60:
        return action
    if action in MUTUAL_ACTIONS:
        return 50 + (action - 106) % 11
    return 1 + (action - 61) % 49


def draw_frames(rng: np.random.Generator) -> int:
    """A recording length (frames) from NTU's distribution: log-normal, median 80, 30-300."""
    frames = MEDIAN_FRAMES * np.exp(rng.normal(0.0, FRAMES_SIGMA))
    return int(np.clip(round(frames), MIN_FRAMES, MAX_FRAMES))


def resample(skeleton: SkeletonFile, frames: int) -> SkeletonFile:
    """``skeleton`` played at another length: nearest source frame for each of ``frames``.
    Every frame of a generated file holds the same bodies, so body records stay aligned."""
    per_frame = int(skeleton.bodies_per_frame[0])
    if not (skeleton.bodies_per_frame == per_frame).all():
        raise ValueError("resample needs the same number of bodies in every frame")
    source = np.round(np.linspace(0, skeleton.num_frames - 1, frames)).astype(np.int64)
    records = (source[:, None] * per_frame + np.arange(per_frame)).ravel()
    return SkeletonFile(
        num_frames=frames,
        bodies_per_frame=np.full(frames, per_frame, dtype=np.int64),
        body_ids=skeleton.body_ids[records],
        body_info=skeleton.body_info[records],
        body_frame=np.repeat(np.arange(frames, dtype=np.int64), per_frame),
        joints=skeleton.joints[records],
    )


def scale_skeleton(name: SampleName, seed: int) -> SkeletonFile:
    """The generated recording of ``name``: its action's template motion, its performer's body,
    its camera, at a drawn length (the same arguments give the same file)."""
    fields = [seed, name.setup, name.camera, name.performer, name.replication, name.action]
    skeleton = generate_skeleton_file(
        motion_template(name.action), name.performer, name.camera, name.replication, fields
    )
    return resample(skeleton, draw_frames(np.random.default_rng([*fields, 1])))


def corrupt_bytes(valid: bytes, kind: str, rng: np.random.Generator) -> bytes:
    """A broken version of a valid ``.skeleton`` file's bytes: ``truncated`` (cut between 20 %
    and 80 % of its length), ``empty`` or ``wrong_joint_count`` (the first body says 24 joints
    and lists 24)."""
    if kind == "empty":
        return b""
    if kind == "truncated":
        return valid[: int(len(valid) * rng.uniform(0.2, 0.8))]
    if kind == "wrong_joint_count":
        lines = valid.split(b"\n")
        # line 0: frame count, 1: body count, 2: body info, 3: joint count, 4..28: joints
        if lines[3] != b"25":
            raise ValueError("expected the first body's joint count on line 4")
        return b"\n".join([*lines[:3], b"24", *lines[4:28], *lines[29:]])
    raise ValueError(f"unknown corruption {kind!r}; expected one of {CORRUPTIONS}")


def _write_unique(folder: Path, names: Sequence[SampleName], seed: int) -> int:
    for name in names:
        write_skeleton(folder / f"{name}.skeleton", scale_skeleton(name, seed))
    return len(names)


def _sources(names: Sequence[SampleName], unique: int) -> dict[SampleName, SampleName]:
    """Which generated file each name links to: within an action, name k shares the file of
    name k mod (the action's share of ``unique``)."""
    by_action: dict[int, list[SampleName]] = {}
    for name in names:
        by_action.setdefault(name.action, []).append(name)
    per_action = max(1, -(-unique // len(by_action)))
    return {
        name: group[k % per_action] for group in by_action.values() for k, name in enumerate(group)
    }


def write_scale_set(
    folder: str | PathLike[str],
    names: Sequence[SampleName],
    *,
    unique: int | None = None,
    corrupt: int = 0,
    seed: int = 0,
    workers: int | None = None,
) -> dict[str, str]:
    """Write a ``.skeleton`` file for every name into ``folder``; returns name -> ``"ok"`` or
    the corruption (see :data:`CORRUPTIONS`) of that file.

    Args:
        unique: distinct recordings to generate (default: one per name); the other names are
            hard links to one of their action's (no extra disk, see the module docstring).
        corrupt: names (chosen with ``seed``) whose file is replaced by a corrupt one, the
            corruptions in turn.
        workers: processes generating files (None: CPU count).

    Raises:
        ValueError: ``corrupt`` or ``unique`` is out of range.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = list(names)
    unique = len(names) if unique is None else unique
    if not 1 <= unique or not 0 <= corrupt <= len(names):
        raise ValueError(f"need unique >= 1 and 0 <= corrupt <= {len(names)}")
    sources = _sources(names, unique)
    generated = sorted(set(sources.values()), key=str)
    workers = (os.cpu_count() or 1) if workers is None else workers
    chunk = max(1, min(32, len(generated) // (4 * workers) or 1))
    chunks = [generated[i : i + chunk] for i in range(0, len(generated), chunk)]
    if workers == 1:
        for part in chunks:
            _write_unique(folder, part, seed)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_write_unique, [folder] * len(chunks), chunks, [seed] * len(chunks)))
    for name, source in sources.items():
        if name != source:
            os.link(folder / f"{source}.skeleton", folder / f"{name}.skeleton")
    kinds = {str(name): OK for name in names}
    rng = np.random.default_rng([seed, corrupt])
    for k, i in enumerate(sorted(rng.choice(len(names), size=corrupt, replace=False))):
        kind = CORRUPTIONS[k % len(CORRUPTIONS)]
        path = folder / f"{names[i]}.skeleton"
        broken = corrupt_bytes(path.read_bytes(), kind, rng)
        path.unlink()  # may be a hard link: never write through it into another name's file
        path.write_bytes(broken)
        kinds[str(names[i])] = kind
    return kinds


def link_subset(
    source: str | PathLike[str], folder: str | PathLike[str], names: Sequence[str]
) -> None:
    """Hard-link the files of ``names`` (sample ids) from ``source`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        os.link(Path(source) / f"{name}.skeleton", folder / f"{name}.skeleton")
