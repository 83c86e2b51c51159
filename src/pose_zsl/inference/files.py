"""The four files of one trained variant: where the catalog keeps them, and loading them.

A missing file raises :class:`MissingModelError` naming the ``kedro run`` that makes it; files
that do not belong together raise :class:`ModelMismatchError` (see
:mod:`pose_zsl.inference.variant`).
"""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

DEFAULT_SPLIT = "nearest"
DEFAULT_HEAD = "relation_net"
DEFAULT_EMBEDDING = "learned"


class MissingModelError(FileNotFoundError):
    """Trained model files are absent; the message lists them and the pipelines to run."""


class ModelMismatchError(ValueError):
    """Model files that do not belong together (other split, embedder or dimensions)."""


@dataclass(frozen=True)
class ModelFiles:
    """The four files of one trained variant, where the Kedro catalog writes them."""

    stgcn: Path
    head: Path
    label_embeddings: Path
    calibration: Path
    #: the catalog entry of each file and the environment, when the files are the catalog's
    entries: dict[str, str] | None = field(default=None, compare=False)
    env: str | None = None

    @classmethod
    def for_variant(
        cls,
        project_dir: str | Path,
        split: str = DEFAULT_SPLIT,
        head: str = DEFAULT_HEAD,
        embedding: str = DEFAULT_EMBEDDING,
        env: str | None = None,
    ) -> ModelFiles:
        """Where the catalog of environment ``env`` (None: the default run environment) in
        ``project_dir`` keeps the variant's entries ``{split}.stgcn_model``,
        ``{split}.{head}.{embedding}.zsl_model``, ``label_embeddings_{embedding}`` and
        ``{split}.{head}.{embedding}.calibration``: read from the resolved catalog, not a copy
        of its paths."""
        from pose_zsl.environments import config_loader

        catalog = config_loader(env, project_dir)["catalog"]
        keys = {"split": split, "head": head, "embedding": embedding}

        entries = {
            "stgcn": "{split}.stgcn_model",
            "head": "{split}.{head}.{embedding}.zsl_model",
            "label_embeddings": "label_embeddings_{embedding}",
            "calibration": "{split}.{head}.{embedding}.calibration",
        }
        paths = {
            key: Path(project_dir) / catalog[entry]["filepath"].format(**keys)
            for key, entry in entries.items()
        }
        named = {key: entry.format(**keys) for key, entry in entries.items()}
        return cls(**paths, entries=named, env=env)

    def as_dict(self) -> dict[str, Path]:
        return {
            "stgcn": self.stgcn,
            "head": self.head,
            "label_embeddings": self.label_embeddings,
            "calibration": self.calibration,
        }

    def require(self) -> None:
        """Raise :class:`MissingModelError` naming every missing file and the command that
        makes them (Kedro runs just the nodes those catalog entries need)."""
        missing = {key: path for key, path in self.as_dict().items() if not path.is_file()}
        if not missing:
            return
        listing = "\n".join(f"  - {key}: {path}" for key, path in missing.items())
        command = "kedro run" + (f" --env {self.env}" if self.env else "")
        if self.entries:
            command += " --to-outputs " + ",".join(self.entries[key] for key in missing)
        raise MissingModelError(
            f"trained model files are missing:\n{listing}\nrun `{command}` in the project "
            "first (a plain `kedro run` makes every variant)"
        )


def load_torch_payload(path: str | Path, what: str) -> dict[str, Any]:
    """A model artefact dict from a ``torch.save`` file, loaded without running code."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MissingModelError(f"{what} {path} does not exist") from None
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"{path}: not a readable {what} ({error})") from error
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: a {what} must hold a dict, got {type(payload).__name__}")
    return payload


def load_calibration(path: str | Path) -> dict[str, Any]:
    """The calibration JSON written by the ``zsl_training`` pipeline (key ``gamma``)."""
    path = Path(path)
    try:
        calibration = json.loads(path.read_text())
    except FileNotFoundError:
        raise MissingModelError(f"calibration file {path} does not exist") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    return calibration


def load_model_files(files: ModelFiles) -> dict[str, Any]:
    """The artefacts in ``files`` as :class:`~pose_zsl.inference.ZeroShotPredictor` takes them
    (``stgcn_artifact``, ``head_artifact``, ``label_embeddings``, ``calibration``), and
    ``sources`` naming the files for its messages.

    Raises:
        MissingModelError: a file is missing (see :meth:`ModelFiles.require`).
        ValueError: a file that cannot be read as what it should hold.
    """
    files.require()
    try:
        table = pd.read_parquet(files.label_embeddings)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{files.label_embeddings}: not a readable parquet table ({error})"
        ) from error
    return {
        "stgcn_artifact": load_torch_payload(files.stgcn, "ST-GCN artefact"),
        "head_artifact": load_torch_payload(files.head, "zero-shot head artefact"),
        "label_embeddings": table,
        "calibration": load_calibration(files.calibration),
        "sources": {key: str(path) for key, path in files.as_dict().items()},
    }
