

# --- skeleton data layer fixtures (owner: skeleton-io) ----------------------------------------
import pathlib as _skeleton_pathlib

import numpy as _skeleton_np
import pytest as _skeleton_pytest

_SKELETON_SHARED = _skeleton_pathlib.Path(__file__).resolve().parents[2] / "shared"


@_skeleton_pytest.fixture(scope="session")
def skeleton_ntu_samples() -> _skeleton_pathlib.Path:
    """The real NTU ``.skeleton`` files in /work/shared (skips when absent)."""
    path = _SKELETON_SHARED / "data" / "ntu_samples"
    if not (path / "SOURCES.md").is_file():
        _skeleton_pytest.skip(f"{path} is not available")
    return path


@_skeleton_pytest.fixture(scope="session")
def skeleton_msr_root() -> _skeleton_pathlib.Path:
    """The MSR Action3D release in /work/shared (skips when absent)."""
    path = _SKELETON_SHARED / "data" / "real" / "MSRAction3D"
    if not (path / "real_world_coordinates").is_dir():
        _skeleton_pytest.skip(f"{path} is not available")
    return path


@_skeleton_pytest.fixture
def skeleton_small():
    """A small, fully specified SkeletonFile: 4 frames, bodies per frame 1, 2, 0, 1."""
    from pose_zsl.skeleton.ntu import SkeletonFile

    rng = _skeleton_np.random.default_rng(7)
    bodies_per_frame = _skeleton_np.array([1, 2, 0, 1])
    num_bodies = int(bodies_per_frame.sum())
    joints = rng.normal(size=(num_bodies, 25, 12)).astype(_skeleton_np.float32)
    joints[..., 11] = 2  # tracking state
    joints[:, 3, 7:11] = 0  # leaf joints carry a zero quaternion
    info = rng.integers(0, 2, size=(num_bodies, 9)).astype(float)
    info[:, 6:8] = rng.normal(size=(num_bodies, 2))
    return SkeletonFile(
        num_frames=4,
        bodies_per_frame=bodies_per_frame,
        body_ids=_skeleton_np.array(
            [72057594037931101, 72057594037931101, 72057594037931781, 72057594037931101]
        ),
        body_info=info,
        body_frame=_skeleton_np.array([0, 1, 1, 3]),
        joints=joints,
    )


@_skeleton_pytest.fixture(params=["arrow", "compiled"])
def skeleton_parser(request, monkeypatch) -> str:
    """Run a test once per fast NTU parser: Arrow, and the numba kernel (skipped without numba).
    The line-by-line parser behind both is the same."""
    from pose_zsl.skeleton import ntu

    if request.param == "arrow":
        monkeypatch.setattr(ntu, "_compiled_scan", None)
    else:
        monkeypatch.setattr(ntu, "_compiled_scan", ntu._UNSET)
        if ntu._compiled_parser() is None:
            _skeleton_pytest.skip("numba is not installed (or POSE_ZSL_NTU_PARSER=arrow)")
    return request.param
