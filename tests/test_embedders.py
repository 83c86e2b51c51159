"""Label embedders: sentence-transformers offline, Sent2Vec, random; the label-embedding table."""

from __future__ import annotations

import csv
import logging
import socket
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import require_shared

from pose_zsl.text.embedders import (
    LABEL_EMBEDDING_COLUMNS,
    RandomEmbedder,
    SentenceTransformerEmbedder,
    build_label_embeddings,
    embed_labels,
    embedding_matrix,
    label_embedding_table,
    make_embedder,
    wiki_tokenize,
)
from pose_zsl.text.sent2vec import WIKI_BIGRAMS_URL

SHARED = Path(__file__).resolve().parents[2] / "shared"
TINY_BIGRAM = SHARED / "fixtures" / "sent2vec" / "tiny_bigram.bin"
NAMES = ["drink water", "eat meal/snack", "kicking something", "wear jacket", "take off jacket"]


@pytest.fixture(scope="module")
def network_attempts():
    """Every outgoing connection fails and is recorded, for the whole module."""
    attempts: list[object] = []

    def refuse(_socket, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"network access attempted in a test: {address}")

    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("HF_HUB_OFFLINE", raising=False)
        patch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket.socket, "connect_ex", refuse)
        yield attempts


@pytest.fixture(scope="module")
def minilm(network_attempts) -> SentenceTransformerEmbedder:
    return make_embedder("sentence_transformers")


@pytest.fixture(scope="module")
def tiny_sent2vec_path() -> Path:
    return require_shared(TINY_BIGRAM, "the tiny Sent2Vec model")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


# -- sentence-transformers ------------------------------------------------------------------------
def test_minilm_embeds_offline(minilm, network_attempts):
    vectors = minilm.embed(["drink water", "eat meal", "kick something"])
    assert minilm.dim == 384
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.1
    assert network_attempts == []


def test_minilm_label_table(minilm, network_attempts, tmp_path):
    table = label_embedding_table(NAMES, minilm)
    assert tuple(table.columns) == LABEL_EMBEDDING_COLUMNS
    assert table["action_id"].tolist() == list(range(5))
    assert table["text"].tolist()[1] == "eat meal or snack"
    assert set(table["embedder"]) == {"sentence_transformers"}
    assert set(table["embedder_model"]) == {"all-MiniLM-L6-v2"}
    assert set(table["dim"]) == {384}
    matrix = embedding_matrix(table)
    assert matrix.dtype == np.float32 and matrix.shape == (5, 384)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    # wear jacket is nearer to take off jacket than to drink water
    assert matrix[3] @ matrix[4] > matrix[3] @ matrix[0]
    path = tmp_path / "label_embeddings.parquet"
    table.to_parquet(path)
    again = pd.read_parquet(path)
    np.testing.assert_array_equal(embedding_matrix(again), matrix)
    assert embedding_matrix(again).dtype == np.float32
    assert network_attempts == []


def test_several_texts_are_averaged_after_normalising(minilm):
    single = minilm.embed(["drink water", "a person drinks from a glass"]).astype(np.float64)
    single /= np.linalg.norm(single, axis=1, keepdims=True)
    expected = single.mean(0) / np.linalg.norm(single.mean(0))
    got = embed_labels([["drink water", "a person drinks from a glass"], ["clapping"]], minilm)
    assert got.shape == (2, 384)
    np.testing.assert_allclose(got[0], expected, atol=1e-6)


def test_build_with_templates_records_texts(minilm):
    table = build_label_embeddings(
        NAMES[:2], templates=["a person {name}"], custom_texts={0: "sipping water"}
    )
    assert table["texts"].tolist()[0] == ["a person drink water", "sipping water"]
    assert table["text"].tolist()[0] == "a person drink water | sipping water"


def test_missing_local_model_directory(tmp_path, network_attempts):
    with pytest.raises(FileNotFoundError, match="'model'"):
        make_embedder("sentence_transformers", model=str(tmp_path / "no-such-model"))
    assert network_attempts == []


def test_ntu60_nearest_split_invariants(minilm):
    """On the real NTU-60 names: each nearest-split unseen class keeps its nearest neighbour
    among the seen classes, and is closer to it than any furthest-split class is to its own."""
    from pose_zsl.zsl.splits import distance_matrix, select_furthest, select_nearest

    table = resources.files("pose_zsl.skeleton") / "data" / "ntu120_actions.csv"
    with table.open(encoding="utf-8") as handle:
        names = [row["name"] for row in csv.DictReader(handle)][:60]
    vectors = embedding_matrix(label_embedding_table(names, minilm))
    nearest = select_nearest(vectors, 5)
    furthest = select_furthest(vectors, 5)
    assert len(nearest) == len(furthest) == 5 and not set(nearest) & set(furthest)
    distances = distance_matrix(vectors)
    np.fill_diagonal(distances, np.inf)
    for unseen in nearest:
        assert int(distances[unseen].argmin()) not in nearest
    seen = [i for i in range(60) if i not in furthest]
    nearest_seen = [distances[i, [j for j in range(60) if j not in nearest]].min() for i in nearest]
    furthest_seen = [distances[i, seen].min() for i in furthest]
    assert max(nearest_seen) < min(furthest_seen)


# -- sent2vec --------------------------------------------------------------------------------------
def test_sent2vec_embedder(tiny_sent2vec_path):
    embedder = make_embedder("sent2vec", model_path=tiny_sent2vec_path)
    assert embedder.name == "sent2vec" and embedder.dim == 16
    table = label_embedding_table(["wear jacket", "take off jacket"], embedder)
    assert set(table["embedder"]) == {"sent2vec"}
    np.testing.assert_allclose(np.linalg.norm(embedding_matrix(table), axis=1), 1, atol=1e-6)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Grab other person\u2019s stuff.", "grab other person 's stuff ."),
        ('don\'t (say) "stop"', 'do n\'t ( say ) " stop "'),
        ("  eat meal or snack ", "eat meal or snack"),
    ],
)
def test_wiki_tokenize(text, tokens):
    assert wiki_tokenize(text) == tokens


def test_sent2vec_tokenize_option(tiny_sent2vec_path):
    raw = make_embedder("sent2vec", model_path=tiny_sent2vec_path, tokenize=False)
    tokenized = make_embedder("sent2vec", model_path=tiny_sent2vec_path)
    assert not raw.embed(["Wear Jacket"]).any()  # the model itself does not lower-case
    np.testing.assert_array_equal(tokenized.embed(["Wear Jacket."]), raw.embed(["wear jacket ."]))


def test_sent2vec_unknown_words_are_an_error_not_a_zero_vector(tiny_sent2vec_path):
    embedder = make_embedder("sent2vec", model_path=tiny_sent2vec_path)
    with pytest.raises(ValueError, match="class 1 text 'zyzzyva'"):
        embed_labels([["wear jacket"], ["zyzzyva"]], embedder)


def test_missing_sent2vec_without_fallback(tmp_path):
    with pytest.raises(FileNotFoundError, match="label_embedding.sent2vec.model_path"):
        make_embedder("sent2vec", model_path=tmp_path / "wiki_bigrams.bin")


def test_missing_sent2vec_falls_back_loudly(tmp_path, caplog, minilm):
    missing = tmp_path / "wiki_bigrams.bin"
    with caplog.at_level(logging.WARNING, logger="pose_zsl.text.embedders"):
        table = build_label_embeddings(
            NAMES[:2], "sent2vec", embedder_options={"model_path": str(missing)}, fallback=True
        )
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert str(missing) in message and WIKI_BIGRAMS_URL in message
    assert "sentence_transformers" in message
    assert set(table["embedder"]) == {"sentence_transformers"}
    assert set(table["dim"]) == {384}


# -- random ----------------------------------------------------------------------------------------
def test_random_embedder_is_deterministic_per_seed_and_text():
    texts = ["drink water", "clapping", "drink water"]
    first = make_embedder("random", seed=3).embed(texts)
    again = RandomEmbedder(seed=3).embed(texts[::-1])[::-1]
    assert first.shape == (3, 384) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first[0], first[2])
    assert not np.allclose(first[0], first[1])
    other_seed = RandomEmbedder(seed=4).embed(texts)
    assert not np.allclose(first, other_seed)


def test_random_embedder_dimension():
    assert make_embedder("random", like="sent2vec").dim == 700
    assert make_embedder("random", dim=16).embed(["a"]).shape == (1, 16)
    vectors = RandomEmbedder(seed=0, dim=4096).embed(["a"])
    assert abs(float(vectors.mean())) < 0.1 and abs(float(vectors.std()) - 1) < 0.1
    with pytest.raises(ValueError, match="like='bert'"):
        make_embedder("random", like="bert")


def test_random_table_is_unit_norm():
    table = build_label_embeddings(NAMES, "random", embedder_options={"seed": 1})
    assert set(table["embedder"]) == {"random"}
    np.testing.assert_allclose(np.linalg.norm(embedding_matrix(table), axis=1), 1, atol=1e-6)


# -- registry --------------------------------------------------------------------------------------
def test_unknown_embedder_lists_known():
    with pytest.raises(ValueError, match="sentence_transformers"):
        make_embedder("word2vec")


def test_unknown_option_is_named():
    with pytest.raises(ValueError, match="model_pth"):
        make_embedder("sent2vec", model_pth="x.bin")


def test_embed_labels_rejects_empty_class():
    with pytest.raises(ValueError, match="class 1"):
        embed_labels([["a"], []], RandomEmbedder())
