"""Custom Kedro datasets: raw skeleton sources, Arrow tables, torch artefacts and the
zero-shot predictor as an MLflow pyfunc model."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from kedro.io import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)

RAW_FORMATS = ("ntu", "msr_action3d", "utkinect", "stgcn_arrays")


@dataclass(frozen=True)
class RawSource:
    """Where raw recordings live and how to read them; what the ingestion node receives."""

    path: str
    format: str  # one of RAW_FORMATS
    dataset: str  # ntu60 | ntu120 | msr_action3d | utkinect
    source: str  # recorded in samples.source: synthetic | ntu | msr_action3d | utkinect | ...
    benchmark: str | None = None  # stgcn_arrays: xsub | xview sub-folder


class SkeletonSourceDataset(AbstractDataset[None, RawSource]):
    """A read-only folder of raw recordings (NTU ``.skeleton``, MSR Action3D, UTKinect-Action3D,
    ST-GCN arrays).

    ``path`` may come from an environment variable through the catalog (``${oc.env:...}``).
    Loading checks that the folder exists and is not empty, so a wrong path fails before any
    work starts, naming the folder and the setting to change.
    """

    def __init__(
        self,
        path: str,
        format: str = "ntu",
        dataset: str = "ntu60",
        source: str | None = None,
        benchmark: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if format not in RAW_FORMATS:
            raise DatasetError(f"unknown raw format {format!r}; expected one of {RAW_FORMATS}")
        self._source = RawSource(
            path=str(path),
            format=format,
            dataset=dataset,
            source=source or format,
            benchmark=benchmark,
        )
        self.metadata = metadata

    def load(self) -> RawSource:
        folder = Path(self._source.path)
        if not folder.is_dir():
            raise DatasetError(
                f"raw recordings folder {folder} does not exist; {_path_hint(folder)}"
            )
        if not any(folder.iterdir()):
            raise DatasetError(f"raw recordings folder {folder} is empty; {_path_hint(folder)}")
        return self._source

    def save(self, data: None) -> None:
        raise DatasetError("raw recordings are read-only")

    def _describe(self) -> dict[str, Any]:
        return asdict(self._source)


def _path_hint(folder: Path) -> str:
    """Which setting gave ``folder``: the environment variables holding exactly that path
    (the catalog reads e.g. ``${oc.env:NTU60_SKELETON_DIR,...}``), else the catalog entry."""
    named = sorted(name for name, value in os.environ.items() if value and Path(value) == folder)
    if named:
        return f"it comes from the environment variable {' / '.join(named)}: point it at your data"
    return (
        "set the environment variable the environment's catalog.yml reads for 'raw_recordings' "
        "(e.g. NTU60_SKELETON_DIR, MSR_ACTION3D_DIR) or edit that entry's path"
    )


@dataclass(frozen=True)
class PooledSource:
    """Several raw sources ingested as one dataset (:mod:`pose_zsl.skeleton.pooled`); with a
    ``target``, that dataset is the cross-dataset test set and every other one trains."""

    sources: tuple[RawSource, ...]
    target: str | None = None

    @property
    def path(self) -> str:
        return " + ".join(source.path for source in self.sources)

    @property
    def dataset(self) -> str:
        return "+".join(source.dataset for source in self.sources)


class PooledSourceDataset(AbstractDataset[None, PooledSource]):
    """Raw recordings of several datasets pooled into one (``sources``: a list of
    :class:`SkeletonSourceDataset` arguments, e.g. ``{path, format, dataset}``), optionally
    with a cross-dataset ``target`` (one of the sources' ``dataset``)."""

    def __init__(
        self,
        sources: list[dict[str, Any]],
        target: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(sources, list) or len(sources) < 2:
            raise DatasetError(f"'sources' must list at least two raw sources, got {sources!r}")
        self._parts = [SkeletonSourceDataset(**source) for source in sources]
        datasets = [part._source.dataset for part in self._parts]
        if target is not None and target not in datasets:
            raise DatasetError(
                f"'target' {target!r} is not one of the sources' datasets {datasets}"
            )
        self._target = target
        self.metadata = metadata

    def load(self) -> PooledSource:
        return PooledSource(tuple(part.load() for part in self._parts), self._target)

    def save(self, data: None) -> None:
        raise DatasetError("raw recordings are read-only")

    def _describe(self) -> dict[str, Any]:
        return {"sources": [part._describe() for part in self._parts], "target": self._target}


class SyntheticSkeletonDataset(SkeletonSourceDataset):
    """The default source: a folder of procedurally generated NTU-format ``.skeleton`` files,
    read by the same NTU reader as real data.

    Loading only reads: it returns the folder as a :class:`RawSource`, or fails naming the
    command that generates it. Saving the generator settings (``samples_per_action``, ``seed``,
    ``num_performers``: what the ``synthetic_recordings`` node of the ingestion pipeline
    returns) writes the files, unless the folder's manifest says it already holds exactly those
    (same settings, same ``GENERATOR_VERSION``): regenerating 720 files every run would be
    wasted work.
    """

    MANIFEST = "_synthetic_manifest.json"
    SETTINGS = ("samples_per_action", "seed", "num_performers")

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(path, format="ntu", dataset="ntu60", source="synthetic", metadata=metadata)

    def load(self) -> RawSource:
        folder = Path(self._source.path)
        if not (folder / self.MANIFEST).is_file():
            raise DatasetError(
                f"no synthetic recordings in {folder} (no {self.MANIFEST}): generate them with "
                "'kedro run --pipelines ingestion' (or 'make run')"
            )
        return self._source

    def save(self, data: dict[str, Any]) -> None:  # type: ignore[override]
        from pose_zsl.skeleton.synthetic import GENERATOR_VERSION, generate_dataset

        settings = synthetic_settings(data)
        folder = Path(self._source.path)
        manifest = folder / self.MANIFEST
        wanted = {**settings, "generator_version": GENERATOR_VERSION}
        if manifest.is_file() and json.loads(manifest.read_text()) == wanted:
            logger.info("Synthetic recordings in %s are up to date: %s", folder, wanted)
            return
        folder.mkdir(parents=True, exist_ok=True)
        # the manifest goes first and comes back last: an interrupted run leaves no manifest,
        # so the next one regenerates instead of trusting a half-written folder
        manifest.unlink(missing_ok=True)
        for stale in folder.glob("*.skeleton"):
            stale.unlink()
        logger.info("Generating synthetic NTU-format recordings in %s: %s", folder, wanted)
        files = generate_dataset(folder, **settings)
        manifest.write_text(json.dumps(wanted))
        logger.info("Generated %d synthetic recordings", len(files))


def synthetic_settings(data: Any) -> dict[str, int]:
    """The generator settings in ``data`` (the ``synthetic_data`` parameters), as integers;
    a missing or unknown key is an error naming it."""
    expected = SyntheticSkeletonDataset.SETTINGS
    if not isinstance(data, dict):
        raise DatasetError(
            f"synthetic recordings: expected the generator settings {list(expected)} "
            f"(parameters 'synthetic_data'), got {type(data).__name__}"
        )
    missing = [key for key in expected if key not in data]
    unknown = sorted(set(data) - set(expected))
    if missing or unknown:
        raise DatasetError(
            f"parameters 'synthetic_data': missing {missing}, unknown {unknown}; "
            f"expected exactly {list(expected)}"
        )
    return {key: int(data[key]) for key in expected}


#: File name endings :class:`ArrowTableDataset` stores as Arrow IPC (any other: parquet).
IPC_SUFFIXES = (".arrow", ".feather", ".ipc")


class ArrowTableDataset(AbstractDataset[pa.Table, pa.Table]):
    """A ``pyarrow.Table`` in one file: Arrow IPC when the name ends in ``.arrow`` (also
    ``.feather``, ``.ipc``), else parquet.

    An Arrow IPC file is uncompressed and loaded memory-mapped: the table's buffers *are* the
    file's pages, so loading costs no memory and a reader touching a few rows reads only those
    (the ``sequences`` table: about 6 GB at NTU RGB+D 120 size). A parquet file is decoded
    into memory on every load (``memory_map`` only spares the read buffer), which suits small
    tables.

    Saving writes one record batch (parquet: row group) per chunk of the table, so a table
    memory-mapped from elsewhere is streamed to disk without being copied into memory, into a
    temporary sibling that replaces the file only when complete: a run killed midway leaves the
    previous file (or none) in place. Temporary files of a killed run are removed by the next
    save. The table ingestion spooled to a file on the same disk is not written again: the
    spool file is linked into place.
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self._ipc = self._filepath.suffix.lower() in IPC_SUFFIXES
        self.metadata = metadata

    def load(self) -> pa.Table:
        if self._ipc:
            return pa.ipc.open_file(pa.memory_map(str(self._filepath))).read_all()
        return pq.read_table(str(self._filepath), memory_map=True)

    def save(self, data: pa.Table) -> None:
        if not isinstance(data, pa.Table):
            raise DatasetError(
                f"{self._filepath}: expected a pyarrow.Table to save, got {type(data).__name__}"
            )
        path = Path(self._filepath)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self._ipc and _link_spool(data, path):
            return
        with _atomic_path(path) as tmp:
            if self._ipc:
                with pa.ipc.new_file(tmp, data.schema) as writer:
                    for batch in data.to_batches():
                        writer.write_batch(batch)
            else:
                with pq.ParquetWriter(tmp, data.schema) as writer:
                    for batch in data.to_batches():
                        writer.write_batch(batch)

    def _exists(self) -> bool:
        return Path(self._filepath).exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}


def _link_spool(data: pa.Table, path: Path) -> bool:
    """Give the spool file behind ``data`` (ingestion's, see
    :class:`pose_zsl.skeleton.store.SequenceSpool`) the name ``path`` instead of writing the
    data again; False (nothing done) when ``data`` is not exactly a spooled table or the file
    cannot be linked there (another disk)."""
    from pose_zsl.skeleton.store import spool_file

    spool = spool_file(data)
    if spool is None:
        return False
    try:
        with _atomic_path(path) as tmp:
            os.unlink(tmp)
            os.link(spool, tmp)
    except OSError as error:
        logger.info("writing %s anew: the spool %s cannot be linked (%s)", path, spool, error)
        return False
    spool.unlink()  # the data lives on under its new name (and in the mapping)
    return True


class TorchArtifactDataset(AbstractDataset[dict, dict]):
    """A model artefact: a dict of tensors and plain metadata in one ``torch.save`` file.

    Loaded with ``weights_only=True`` so a file from elsewhere cannot run code; written
    atomically so an interrupted save never leaves a truncated model behind.
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    def load(self) -> dict:
        import torch

        try:
            return torch.load(str(self._filepath), map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as error:  # torch raises several types for corrupt files
            raise DatasetError(f"model artefact {self._filepath} is corrupt: {error}") from error

    def save(self, data: dict) -> None:
        import torch

        path = Path(self._filepath)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _atomic_path(path) as tmp:
            torch.save(data, tmp)

    def _exists(self) -> bool:
        return Path(self._filepath).exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}


class ZeroShotPredictorDataset(AbstractDataset[dict, Any]):
    """The whole zero-shot chain of one variant as an MLflow pyfunc model
    (:class:`pose_zsl.mlflow_model.ZeroShotPyfunc`).

    ``save`` takes the bundle made by the ``model_export`` pipeline (the variant's four
    catalog objects plus ``device`` and ``batch_size``), writes a pyfunc model folder at
    ``filepath`` (``mlflow models serve -m FOLDER`` serves it) and, when an MLflow run is
    active (as under kedro-mlflow), logs the same model in that run as ``name``, optionally
    registering it as ``registered_model_name``. ``load`` returns the loaded pyfunc model.
    """

    def __init__(
        self,
        filepath: str,
        name: str = "zero_shot_predictor",
        registered_model_name: str | None = None,
        log_to_active_run: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = PurePosixPath(filepath)
        self._name = name
        self._registered_model_name = registered_model_name
        self._log_to_active_run = log_to_active_run
        self.metadata = metadata

    def load(self) -> Any:
        import mlflow

        return mlflow.pyfunc.load_model(str(self._filepath))

    def save(self, data: dict) -> None:
        import mlflow

        from pose_zsl.mlflow_model import (
            pyfunc_model_options,
            save_pyfunc_model,
            write_model_files,
        )

        with tempfile.TemporaryDirectory(prefix="pose_zsl_predictor_") as folder:
            files = write_model_files(
                data["stgcn_model"],
                data["zsl_model"],
                data["label_embeddings"],
                data["calibration"],
                Path(folder),
            )
            # checked (predictor built, embedder loaded) once for both the folder and the run
            options = pyfunc_model_options(
                files, device=str(data["device"]), batch_size=int(data["batch_size"])
            )
            save_pyfunc_model(options, Path(self._filepath))
            run = mlflow.active_run()
            if self._log_to_active_run and run is not None:
                # step -1: no metric is there for MLflow to link (see ModelMetricsHooks)
                info = mlflow.pyfunc.log_model(
                    name=self._name,
                    registered_model_name=self._registered_model_name,
                    step=-1,
                    **options,
                )
                logger.info(
                    "logged the zero-shot predictor in MLflow run %s as %s",
                    run.info.run_id,
                    info.model_uri,
                )

    def _exists(self) -> bool:
        return (Path(self._filepath) / "MLmodel").is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "name": self._name}


class FigureDataset(AbstractDataset[Any, bytes]):
    """A matplotlib figure saved as a PNG file; loads the PNG's bytes.

    Unlike kedro-datasets' ``MatplotlibDataset`` (save-only), a later node can read the figure,
    which is how the HTML report embeds every figure of the run. The project draws on bare
    ``Figure`` objects (no pyplot state), so nothing needs closing after the save.
    """

    def __init__(
        self, filepath: str, dpi: int = 100, metadata: dict[str, Any] | None = None
    ) -> None:
        self._filepath = PurePosixPath(filepath)
        self._dpi = dpi
        self.metadata = metadata

    def load(self) -> bytes:
        return Path(self._filepath).read_bytes()

    def save(self, data: Any) -> None:
        path = Path(self._filepath)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _atomic_path(path) as tmp:
            data.savefig(tmp, format="png", dpi=self._dpi)

    def _exists(self) -> bool:
        return Path(self._filepath).exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "dpi": self._dpi}


class _atomic_path:
    """Context manager yielding a temporary sibling path that replaces ``path`` on success.

    The temporary name (``.<name>.<pid>.<random>.tmp``,
    :func:`pose_zsl.skeleton.store.temporary_file`) is hidden, never mistaken for the file
    itself, and carries the writing process's id: entering removes the temporary siblings of
    processes that no longer run (a save killed midway), so they cannot pile up.
    """

    def __init__(self, path: Path) -> None:
        self._path = path

    def __enter__(self) -> str:
        from pose_zsl.skeleton.store import temporary_file

        self._tmp = str(temporary_file(self._path.parent, self._path.name))
        return self._tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            # a temporary file is private (0600); the file gets the usual permissions
            os.chmod(self._tmp, 0o666 & ~_UMASK)
            os.replace(self._tmp, self._path)
        elif os.path.exists(self._tmp):
            os.unlink(self._tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The process's umask, read once at import (reading it means setting it).
_UMASK = _umask()
