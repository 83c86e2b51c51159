"""Candidate action names: reading and checking them, and their label vectors.

A name that is one of the label table's classes (after :func:`normalise_label`: its official
name, readable phrase or an embedded text) reuses that class's stored vector, so it is exactly
what the head was trained or evaluated with; a new phrase goes through the same text preparation
(readable phrase, the table's templates) and the same embedder that produced the table. A
candidate that is a training (seen) class is marked, for calibrated stacking.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pose_zsl.inference.files import ModelMismatchError
from pose_zsl.inference.label_table import embedder_from_table, infer_templates, texts_of
from pose_zsl.text.embedders import Embedder, embed_labels
from pose_zsl.text.label_text import class_texts, normalise_label

#: Largest cosine distance tolerated when the rebuilt embedder re-embeds a training class.
EMBEDDER_CHECK_TOLERANCE = 1e-3


def split_labels(values: str | Iterable[str]) -> list[str]:
    """Candidate names from comma-separated strings (one string or several); blank pieces
    (a trailing comma) are dropped."""
    pieces = [values] if isinstance(values, str) else list(values)
    return [part.strip() for piece in pieces for part in str(piece).split(",") if part.strip()]


def read_labels_file(path: str | Path) -> list[str]:
    """One candidate name per line; blank lines and ``#`` comments are ignored (commas are
    part of a name here)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ValueError(f"labels file {path}: {error.strerror or error}") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


#: How each entry point asks for candidate names, for the error that finds none.
CLI_LABELS = '--labels "wave, kick a ball"'
REQUEST_LABELS = """'labels': ["wave", "kick a ball"] or 'labels': "wave, kick a ball\""""


def check_labels(labels: Iterable[str], example: str = CLI_LABELS) -> list[str]:
    """Stripped candidate names, in order; ``example`` shows, in the words of the entry point
    the names came through, how to give them.

    Raises:
        ValueError: no names, a name with no words, or two names that are the same action
            after :func:`normalise_label` (both named).
    """
    cleaned = [str(label).strip() for label in labels]
    cleaned = [label for label in cleaned if label]
    if not cleaned:
        raise ValueError(f"no candidate action names: give at least one, e.g. {example}")
    first_of: dict[str, str] = {}
    for label in cleaned:
        try:
            key = normalise_label(label)
        except ValueError:
            key = ""
        if not key:
            raise ValueError(f"candidate action name {label!r} has no words to embed")
        if key in first_of:
            raise ValueError(
                f"duplicate candidate action names {first_of[key]!r} and {label!r} (both read "
                f"as {key!r}); give each action once"
            )
        first_of[key] = label
    return cleaned


@dataclass(frozen=True)
class CandidateNames:
    """Candidate names that passed :func:`check_labels`; make them with :meth:`check`."""

    names: tuple[str, ...]

    @classmethod
    def check(cls, labels: Iterable[str], example: str = CLI_LABELS) -> CandidateNames:
        """:func:`check_labels`'s names (it raises as that does)."""
        return cls(tuple(check_labels(labels, example)))


@dataclass(frozen=True)
class Candidates:
    """Candidate names with their label vectors and whether each is a training class."""

    labels: list[str]
    vectors: np.ndarray  # (K, E) float32
    seen: np.ndarray  # (K,) bool: a training (seen) class of the model
    matched_class: list[str | None]  # the label table's official name the candidate matched


class CandidateMatcher:
    """Label vectors for candidate names, from one checked label-embedding table.

    Args:
        table: the label-embedding table, sorted by ``action_id``.
        vectors: its class vectors (:func:`~pose_zsl.text.embedders.embedding_matrix`).
        seen_class_ids: the model's training classes.
        base_dir, text_model, embedder: where the table's embedder is found, or the embedder
            itself (see :class:`~pose_zsl.inference.ZeroShotPredictor`).
    """

    def __init__(
        self,
        table: pd.DataFrame,
        vectors: np.ndarray,
        seen_class_ids: Iterable[int],
        *,
        base_dir: Path | None = None,
        text_model: Path | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.table = table
        self.seen_class_ids = list(seen_class_ids)
        self.base_dir = base_dir
        self.text_model = text_model
        self.vectors = vectors
        self._class_index = self._label_index()
        self._embedder = embedder
        self._templates: list[str] | None = None

    def _label_index(self) -> dict[str, int]:
        """Normalised official name, readable phrase and embedded texts -> table row."""
        index: dict[str, int] = {}
        for row, (name, texts) in enumerate(
            zip(
                self.table["action_name"].astype(str),
                self.table["texts"].map(texts_of),
                strict=True,
            )
        ):
            for text in (name, *texts):
                try:
                    key = normalise_label(text)
                except ValueError:
                    continue
                index.setdefault(key, row)
        return index

    @property
    def embedder(self) -> Embedder:
        """The table's embedder, rebuilt on first use and checked against a stored vector."""
        if self._embedder is None:
            self._embedder = embedder_from_table(self.table, self.base_dir, self.text_model)
            self._verify_embedder(self._embedder)
        return self._embedder

    def _verify_embedder(self, embedder: Embedder) -> None:
        texts = texts_of(self.table["texts"].iloc[0])
        vector = embed_labels([texts], embedder)[0]
        stored = self.vectors[0] / np.linalg.norm(self.vectors[0])
        distance = 1.0 - float(vector @ stored)
        if distance > EMBEDDER_CHECK_TOLERANCE:
            raise ModelMismatchError(
                f"the embedder {embedder.name} ({embedder.model}) does not reproduce the label "
                f"table's vector of {self.table['action_name'].iloc[0]!r} (cosine distance "
                f"{distance:.3g}): it is not the embedder the model was trained with"
            )

    def match(self, labels: CandidateNames) -> Candidates:
        """Vectors for checked candidate names (see the module docstring for how)."""
        names = list(labels.names)
        rows = [self._class_index.get(normalise_label(name)) for name in names]
        vectors = np.empty((len(names), self.vectors.shape[1]), dtype=np.float32)
        new = [i for i, row in enumerate(rows) if row is None]
        if new:
            if self._templates is None:
                self._templates = infer_templates(self.table)
            texts = class_texts([names[i] for i in new], templates=self._templates)
            vectors[new] = embed_labels(texts, self.embedder)
        known = [i for i, row in enumerate(rows) if row is not None]
        if known:
            vectors[known] = self.vectors[[rows[i] for i in known]]
        ids = self.table["action_id"].astype(int).to_numpy()
        seen = np.array([row is not None and ids[row] in self.seen_class_ids for row in rows])
        official = [
            None if row is None else str(self.table["action_name"].iloc[row]) for row in rows
        ]
        return Candidates(names, vectors, seen, official)
