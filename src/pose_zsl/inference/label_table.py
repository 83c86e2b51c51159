"""What a label-embedding table says about its text side: its templates and its embedder.

A candidate name that is not one of the table's classes is embedded as the table's own were:
through the same templates (:func:`infer_templates`) and the same embedder, rebuilt from the
table's ``embedder`` / ``embedder_model`` / ``dim`` columns (:func:`embedder_from_table`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd

from pose_zsl.inference.files import ModelMismatchError
from pose_zsl.text.embedders import DEFAULT_SENTENCE_TRANSFORMER_NAMES, Embedder, make_embedder
from pose_zsl.text.label_text import readable_phrase

logger = logging.getLogger(__name__)

_RANDOM_MODEL = re.compile(r"gaussian\(seed=(-?\d+), like=([\w+-]+)\)")
_SENT2VEC_TOKENISED = " (wiki tokenisation)"


def texts_of(value: Any) -> list[str]:
    """A table row's ``texts`` cell as a list (one text, a sequence of them, or none)."""
    if value is None or isinstance(value, str):
        return [value] if value else []
    return [str(text) for text in value]


def infer_templates(table: pd.DataFrame) -> list[str]:
    """The text templates the label table was built with (e.g. ``"a person {name}"``).

    A template is recognised when replacing the first class's readable phrase (``{name}``) or
    official name (``{official}``) in one of its texts gives a pattern that reproduces a text of
    every class. Custom per-class descriptions fit no pattern and are left out. Falls back to
    ``["{name}"]`` when the table has no templated text.
    """
    rows = list(zip(table["action_name"].astype(str), table["texts"].map(texts_of), strict=True))
    official, texts = rows[0]
    phrase = readable_phrase(official)
    found: list[str] = []
    for text in texts:
        if "{" in text or "}" in text:
            continue
        for needle, slot in ((phrase, "{name}"), (official, "{official}")):
            if needle not in text:
                continue
            template = text.replace(needle, slot)
            if template in found:
                continue
            if all(
                template.format(name=readable_phrase(name), official=name) in class_texts_
                for name, class_texts_ in rows
            ):
                found.append(template)
    if not found:
        logger.warning(
            "the label table's texts follow no common template; new candidate names are "
            "embedded as their readable phrase alone"
        )
        return ["{name}"]
    return found


def text_model_path(table: pd.DataFrame, base_dir: str | Path | None = None) -> Path | None:
    """The local file or folder holding the text model of a label-embedding table (a Sent2Vec
    ``.bin``, a sentence-transformers folder), or None when the model needs no file of the
    project (random vectors, a sentence-transformers model from an installed package).

    A relative path is taken from ``base_dir``; the result may not exist.
    """
    name = str(table["embedder"].iloc[0])
    model = str(table["embedder_model"].iloc[0])
    if name == "sent2vec":
        path = Path(model.removesuffix(_SENT2VEC_TOKENISED))
    elif name == "sentence_transformers" and model not in DEFAULT_SENTENCE_TRANSFORMER_NAMES:
        path = Path(model).expanduser()  # as the embedder resolves it
    else:
        return None
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if name == "sentence_transformers" and not path.is_dir():
        return None  # a name in the Hugging Face cache, resolved by the library
    return path


def embedder_from_table(
    table: pd.DataFrame,
    base_dir: str | Path | None = None,
    text_model: str | Path | None = None,
) -> Embedder:
    """Rebuild the embedder recorded in a label-embedding table (``embedder``,
    ``embedder_model``, ``dim`` columns). A relative Sent2Vec path is taken from ``base_dir``;
    ``text_model`` replaces the recorded model file or folder (see :func:`text_model_path`),
    as when the model travels with an MLflow model.

    Raises:
        ValueError: an unknown embedder or model description, or a dimension mismatch.
    """
    name = str(table["embedder"].iloc[0])
    model = str(table["embedder_model"].iloc[0])
    dim = int(table["dim"].iloc[0])
    if name == "random":
        match = _RANDOM_MODEL.fullmatch(model)
        if match is None:
            raise ValueError(f"label table: random embedder model {model!r} is not understood")
        embedder = make_embedder("random", seed=int(match[1]), like=match[2], dim=dim)
    elif name == "sentence_transformers":
        embedder = make_embedder(name, model=str(text_model) if text_model else model)
    elif name == "sent2vec":
        tokenize = model.endswith(_SENT2VEC_TOKENISED)
        model_path = Path(text_model) if text_model else text_model_path(table, base_dir)
        embedder = make_embedder(name, model_path=str(model_path), tokenize=tokenize)
    else:
        raise ValueError(f"label table: unknown embedder {name!r}")
    if embedder.dim != dim:
        raise ModelMismatchError(
            f"embedder {name} ({model}) gives {embedder.dim}-D vectors, the label table "
            f"holds {dim}-D ones"
        )
    return embedder
