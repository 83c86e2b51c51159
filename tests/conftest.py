# --- skeleton data layer fixtures (owner: skeleton-io) ----------------------------------------
import pathlib as _skeleton_pathlib

import numpy as _skeleton_np
import pytest as _skeleton_pytest

_SKELETON_SHARED = _skeleton_pathlib.Path(__file__).resolve().parents[2] / "shared"


# --- the read-only data beside the project (../shared) -----------------------------------------
import os as _shared_os  # noqa: E402
import pathlib as _shared_pathlib  # noqa: E402

import pytest as _shared_pytest  # noqa: E402

#: Values of ``CI`` that mean "running under continuous integration" (GitHub and most CI
#: services set ``CI=true``).
_CI_TRUE = {"1", "true", "yes"}


def running_under_ci() -> bool:
    return _shared_os.environ.get("CI", "").strip().lower() in _CI_TRUE


def require_shared(path: _shared_pathlib.Path, what: str) -> _shared_pathlib.Path:
    """``path`` (a file or folder of ../shared) when it exists. Otherwise the test skips, or,
    under CI (``CI=true``), fails: CI must run the parity and real-data tests, never pass
    because their data is missing."""
    if path.exists():
        return path
    message = f"{what}: {path} is not available"
    if running_under_ci():
        _shared_pytest.fail(f"{message}, and CI={_shared_os.environ['CI']} requires it")
    _shared_pytest.skip(message)


# --- skeleton data layer fixtures, continued --------------------------------------------------
@_skeleton_pytest.fixture(scope="session")
def skeleton_ntu_samples() -> _skeleton_pathlib.Path:
    """The real NTU ``.skeleton`` files in /work/shared (see ``require_shared``)."""
    path = _SKELETON_SHARED / "data" / "ntu_samples"
    require_shared(path / "SOURCES.md", "the real NTU samples")
    return path


@_skeleton_pytest.fixture(scope="session")
def skeleton_msr_root() -> _skeleton_pathlib.Path:
    """The MSR Action3D release in /work/shared (see ``require_shared``)."""
    path = _SKELETON_SHARED / "data" / "real" / "MSRAction3D"
    require_shared(path / "real_world_coordinates", "the MSR Action3D release")
    return path


@_skeleton_pytest.fixture(scope="session")
def skeleton_utkinect_root() -> _skeleton_pathlib.Path:
    """The UTKinect-Action3D release in /work/shared (see ``require_shared``)."""
    path = _SKELETON_SHARED / "data" / "real" / "UTKinect"
    require_shared(path / "joints" / "actionLabel.txt", "the UTKinect-Action3D release")
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


# --- tiny tracked project: the real default pipeline on tiny data (owner: tracking) -----------
import contextlib as _tiny_contextlib  # noqa: E402 (each owner's section has its imports)
import dataclasses as _tiny_dataclasses  # noqa: E402
import json as _tiny_json  # noqa: E402
import os as _tiny_os  # noqa: E402
import pathlib as _tiny_pathlib  # noqa: E402
import shutil as _tiny_shutil  # noqa: E402
from collections.abc import Iterator as _TinyIterator  # noqa: E402

import pytest as _tiny_pytest  # noqa: E402
import yaml as _tiny_yaml  # noqa: E402

#: The Kedro environment the tiny projects run in (written by :func:`make_tiny_project`).
TINY_ENV = "test"
#: Keep every tool offline and quiet: no telemetry, no model downloads.
TINY_OFFLINE_ENV = {
    "DO_NOT_TRACK": "true",
    "KEDRO_DISABLE_TELEMETRY": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    # for the subprocesses (kernel, kedro viz, mlflow server): one thread each on shared cores
    "OMP_NUM_THREADS": "1",
}


@_tiny_dataclasses.dataclass(frozen=True)
class TinyRun:
    """A tiny project after one ``kedro run`` of the default pipeline into ``tracking_uri``."""

    project: _tiny_pathlib.Path
    tracking_uri: str
    #: the MLflow run still active after the Kedro session closed (None: closed as it should)
    run_left_active: str | None = None


def make_tiny_project(root: _tiny_pathlib.Path) -> _tiny_pathlib.Path:
    """A throw-away copy of the project's configuration under ``root / "project"`` with the
    tiny ``test`` environment of ``test_pipelines`` (tiny synthetic data, short schedules)."""
    from test_pipelines import PROJECT, TINY_CATALOG, TINY_PARAMETERS

    project = root / "project"
    project.mkdir(parents=True)
    _tiny_shutil.copy(PROJECT / "pyproject.toml", project / "pyproject.toml")
    (project / "src").mkdir()  # the package itself is imported from the installed project
    _tiny_shutil.copytree(
        PROJECT / "conf", project / "conf", ignore=_tiny_shutil.ignore_patterns("local")
    )
    (project / "conf" / "local").mkdir()
    test_env = project / "conf" / TINY_ENV
    test_env.mkdir()
    (test_env / "catalog.yml").write_text(_tiny_yaml.safe_dump(TINY_CATALOG))
    (test_env / "parameters.yml").write_text(_tiny_yaml.safe_dump(TINY_PARAMETERS))
    return project


@_tiny_contextlib.contextmanager
def mlflow_tracking_uri(uri: str) -> _TinyIterator[None]:
    """Point MLflow (the environment variable and the process-wide URIs that kedro-mlflow and
    ``mlflow.set_tracking_uri`` set) at ``uri`` for the block, then put everything back."""
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    # set_experiment (kedro-mlflow) sets the active experiment and its environment variable
    experiment = (fluent._active_experiment_id, _tiny_os.environ.get("MLFLOW_EXPERIMENT_ID"))
    with _tiny_pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        try:
            mlflow.set_tracking_uri(uri)
            yield
        finally:
            tracking_utils._tracking_uri, registry_utils._registry_uri = saved
            fluent._active_experiment_id = experiment[0]
            if experiment[1] is None:
                _tiny_os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
            else:
                _tiny_os.environ["MLFLOW_EXPERIMENT_ID"] = experiment[1]


def run_tiny_default_pipeline(project: _tiny_pathlib.Path, tracking_uri: str) -> TinyRun:
    """``kedro run`` (default pipeline, ``test`` env) in ``project``, tracked in ``tracking_uri``.

    The working directory, environment and MLflow's process-wide URIs are restored afterwards,
    so other tests in this process see nothing of the run.
    """
    import mlflow
    import torch
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    left_active = None
    threads = torch.get_num_threads()
    with _tiny_pytest.MonkeyPatch.context() as patch, mlflow_tracking_uri(tracking_uri):
        patch.chdir(project)
        for name, value in TINY_OFFLINE_ENV.items():
            patch.setenv(name, value)
        # one intra-op thread: the tiny models gain nothing from more, and under xdist two
        # workers' spinning thread pools on 2 shared cores multiply the CPU time several-fold
        torch.set_num_threads(1)
        try:
            bootstrap_project(project)
            with KedroSession.create(project_path=project, env=TINY_ENV) as session:
                session.run()
        finally:
            torch.set_num_threads(threads)
            active = mlflow.active_run()
            if active is not None:  # kedro-mlflow should have closed it
                left_active = active.info.run_id
                mlflow.end_run()
    return TinyRun(project=project, tracking_uri=tracking_uri, run_left_active=left_active)


def _tiny_shared_root(tmp_path_factory: _tiny_pytest.TempPathFactory) -> _tiny_pathlib.Path:
    """A folder shared by all xdist workers of this pytest session (this session's own base
    temporary folder when xdist is not running)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if _tiny_os.environ.get("PYTEST_XDIST_WORKER") else base


@_tiny_pytest.fixture(scope="session")
def tiny_tracked_project(tmp_path_factory: _tiny_pytest.TempPathFactory) -> TinyRun:
    """One tiny default-pipeline run tracked in its own SQLite store, made once per pytest
    session and shared by every xdist worker (the first to ask runs it, the others wait)."""
    from filelock import FileLock

    root = _tiny_shared_root(tmp_path_factory) / "tiny_tracked_project"
    record = root.with_suffix(".json")
    with FileLock(str(root.with_suffix(".lock"))):
        if record.is_file():
            saved = _tiny_json.loads(record.read_text())
            if "error" in saved:
                _tiny_pytest.fail(f"the shared tiny run failed: {saved['error']}")
            return TinyRun(**{**saved, "project": _tiny_pathlib.Path(saved["project"])})
        if root.exists():
            _tiny_shutil.rmtree(root)
        project = make_tiny_project(root)
        try:
            run = run_tiny_default_pipeline(project, f"sqlite:///{root / 'mlflow.db'}")
        except BaseException as error:
            record.write_text(_tiny_json.dumps({"error": f"{type(error).__name__}: {error}"}))
            raise
        record.write_text(
            _tiny_json.dumps(
                {
                    "project": str(run.project),
                    "tracking_uri": run.tracking_uri,
                    "run_left_active": run.run_left_active,
                }
            )
        )
        return run


@_tiny_pytest.fixture(scope="module")
def one_torch_thread():
    """Two threads on a CPU shared with other jobs run many times slower than one; modules that
    train models opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --- toy skeleton sets for the training, feature and distributed tests -------------------------
from collections.abc import Callable as _ToyCallable  # noqa: E402

import numpy as _toy_np  # noqa: E402


def random_walk_skeletons(
    num_classes: int = 4,
    per_class: int = 12,
    *,
    joints: int = 25,
    seed: int = 0,
    frame_range: tuple[int, int] = (10, 40),
    is_test: _ToyCallable[[int], bool] = lambda performer: performer % 3 == 0,
    layout: str | None = None,
):
    """Random-walk skeletons (1-2 bodies) around a class-specific pose, one per performer and
    class: the samples table (ingestion schema), the sample ids and the (T, M, V, 3) arrays
    (``sequences_table(ids, arrays)`` makes the sequence table). ``is_test(performer index)``
    puts a performer in the cross-subject test split; ``layout`` defaults to the one of
    ``joints``."""
    from pose_zsl.skeleton.store import samples_frame

    rng = _toy_np.random.default_rng(seed)
    poses = rng.normal(size=(num_classes, joints, 3)).astype(_toy_np.float32)
    records, ids, arrays = [], [], []
    for action in range(num_classes):
        for performer in range(per_class):
            frames, bodies = int(rng.integers(*frame_range)), int(rng.integers(1, 3))
            walk = _toy_np.cumsum(rng.normal(scale=0.05, size=(frames, bodies, joints, 3)), axis=0)
            sample_id = f"S001C001P{performer + 1:03d}R001A{action + 1:03d}"
            ids.append(sample_id)
            arrays.append((walk + poses[action]).astype(_toy_np.float32))
            records.append(
                {
                    "sample_id": sample_id,
                    "source": "synthetic",
                    "layout": layout or ("ntu-rgb+d" if joints == 25 else "kinect-v1"),
                    "action_id": action,
                    "action_name": f"action {action}",
                    "performer": performer + 1,
                    "xsub": "test" if is_test(performer) else "train",
                    "xview": "train",
                    "num_frames": frames,
                    "num_bodies": bodies,
                }
            )
    return samples_frame(records), ids, arrays


# --- trained inference model sets (test_inference, test_cli) -----------------------------------
# The builders live in test_inference.py; they are imported when a fixture is first used.


@_tiny_pytest.fixture(scope="session")
def ntu_models(tmp_path_factory: _tiny_pytest.TempPathFactory):
    """A variant trained on synthetic NTU-format recordings (see test_inference.ntu_model_set)."""
    from test_inference import ntu_model_set

    return ntu_model_set(tmp_path_factory.mktemp("ntu_models"))


@_tiny_pytest.fixture(scope="session")
def msr_models(tmp_path_factory: _tiny_pytest.TempPathFactory):
    """A kinect-v1 variant trained on MSR Action3D files (see ``require_shared``)."""
    from test_inference import MSR_DIR, msr_model_set

    require_shared(MSR_DIR, "the MSR Action3D recordings")
    return msr_model_set(tmp_path_factory.mktemp("msr_models"))


@_tiny_pytest.fixture(scope="session")
def ntu_files() -> list[_tiny_pathlib.Path]:
    """The first four real NTU sample files (see ``require_shared``)."""
    from test_inference import NTU_SAMPLES

    require_shared(NTU_SAMPLES, "the real NTU samples")
    return sorted(NTU_SAMPLES.glob("*.skeleton"))[:4]


@_tiny_pytest.fixture(autouse=True)
def _default_grid_after_each_test():
    """A test that runs a session of another environment switches the process's experiment
    grid (``pose_zsl.grid``); forget it afterwards, so later tests build the default one."""
    yield
    from pose_zsl import environments, grid

    grid._state.clear()
    environments._state.clear()  # whether ingestion generates its recordings: the same
