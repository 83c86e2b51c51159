"""The Sent2Vec .bin reader against the library's own vectors, and on files built here."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import require_shared

from pose_zsl.text.sent2vec import (
    FASTTEXT_MAGIC,
    MODEL_PATH_PARAMETER,
    NGRAM_HASH_MULTIPLIER,
    WIKI_BIGRAMS_URL,
    Sent2VecModel,
    tokenize,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures" / "sent2vec"
MODELS = ("tiny_unigram", "tiny_bigram")


@pytest.fixture(scope="module")
def fixture_dir() -> Path:
    require_shared(FIXTURES / "tiny_bigram.bin", "the Sent2Vec fixtures")
    return FIXTURES


@pytest.fixture(scope="module")
def models(fixture_dir: Path) -> dict[str, Sent2VecModel]:
    return {name: Sent2VecModel(fixture_dir / f"{name}.bin") for name in MODELS}


@pytest.fixture(scope="module")
def sentences(fixture_dir: Path) -> list[str]:
    return json.loads((fixture_dir / "sentences.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def extra_sentences(fixture_dir: Path) -> list[str]:
    return json.loads((fixture_dir / "extra_sentences.json").read_text(encoding="utf-8"))


# -- parity with the library --------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("suffix", ["vectors", "vectors_mmap"])
def test_matches_library_vectors(models, sentences, fixture_dir, name, suffix):
    expected = np.load(fixture_dir / f"{name}_{suffix}.npy")
    got = models[name].embed_sentences(sentences)
    assert got.dtype == np.float32
    assert got.shape == expected.shape == (154, 16)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_matches_library_extra_vectors(models, extra_sentences, fixture_dir, name):
    expected = np.load(fixture_dir / f"{name}_extra_vectors.npy")
    got = models[name].embed_sentences(extra_sentences)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_sentence_file_matches_json(fixture_dir, sentences):
    lines = (fixture_dir / "sentences.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert lines == sentences


# -- edge cases, each stated on its own ------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    "text", ["", "   ", "\t", "zyzzyva qwertyuiop", "Wear Jacket", "</s>", "\nwear jacket"]
)
def test_nothing_known_gives_zero_vector(models, name, text):
    vector = models[name].embed_sentences([text])[0]
    assert np.array_equal(vector, np.zeros(16, dtype=np.float32))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    ("text", "same_as"),
    [
        ("wear zyzzyva jacket", "wear jacket"),  # OOV dropped before bigrams are formed
        ("wear jacket zyzzyva", "wear jacket"),
        ("wear jacket.", "wear"),  # punctuation glued to a word makes an unknown token
        ("wear Jacket", "wear"),  # no lower-casing
        ("  sit   down  ", "sit down"),
        ("sit\tdown", "sit down"),
        ("wear </s> jacket", "wear"),
        ("wear jacket\nsit down", "wear jacket"),
        ("wear\x00jacket", "wear jacket"),
        ("__label__walking walking", "walking"),
    ],
)
def test_token_rules(models, name, text, same_as):
    got, expected = models[name].embed_sentences([text, same_as])
    assert np.array_equal(got, expected)
    assert np.abs(expected).sum() > 0


def test_non_ascii_spaces_are_not_separators(models):
    for text in ("wear\u00a0jacket", "wear\u3000jacket"):
        assert not models["tiny_bigram"].embed_sentences([text]).any()


def test_punctuation_tokens_are_words(models):
    model = models["tiny_bigram"]
    assert model.row_ids(". , ! ?")[:4] == [model.word_ids[t] for t in (b".", b",", b"!", b"?")]
    assert len(model.row_ids("wear jacket .")) == 3 + 2


def test_repeated_words_count_every_time(models):
    unigram = models["tiny_unigram"]
    jacket = unigram.word_ids[b"jacket"]
    assert unigram.row_ids("jacket jacket jacket") == [jacket] * 3
    np.testing.assert_allclose(
        unigram.embed_sentences(["jacket jacket jacket"])[0],
        unigram.input_matrix[jacket],
        rtol=0,
        atol=1e-6,
    )
    bigram = models["tiny_bigram"]
    rows = bigram.row_ids("wear wear jacket jacket")
    assert len(rows) == 4 + 3
    assert rows[4] != rows[5] != rows[6]  # (wear, wear), (wear, jacket), (jacket, jacket)


def test_bigram_bucket_formula(models):
    model = models["tiny_bigram"]
    wear, jacket = model.word_ids[b"wear"], model.word_ids[b"jacket"]
    bucket = model.nwords + ((wear * NGRAM_HASH_MULTIPLIER + jacket) % 2**64) % model.bucket
    assert model.row_ids("wear jacket") == [wear, jacket, bucket]
    rows = model.input_matrix[[wear, jacket, bucket]].astype(np.float64)
    np.testing.assert_allclose(
        model.embed_sentences(["wear jacket"])[0], rows.mean(0), rtol=0, atol=1e-6
    )


def test_placeholder_is_row_zero(models):
    model = models["tiny_unigram"]
    vector = model.embed_sentences(["<PLACEHOLDER>"])[0]
    assert np.array_equal(vector, model.input_matrix[0])
    assert np.abs(vector).sum() > 0


def test_tokenize_drops_unencodable_characters():
    assert tokenize("wear\ud800 jacket") == [b"wear", b"jacket"]
    assert tokenize("a\x0bb\x0cc\rd") == [b"a", b"b", b"c", b"d"]
    assert tokenize("a\x1cb") == [b"a\x1cb"]  # Python's str whitespace, but not a separator


# -- memory mapping and headers --------------------------------------------------------------------
@pytest.mark.parametrize(("name", "rows"), [("tiny_unigram", 7847), ("tiny_bigram", 27846)])
def test_input_matrix_is_memory_mapped(models, name, rows):
    model = models[name]
    assert isinstance(model.input_matrix, np.memmap)
    assert model.input_matrix.shape == (rows, 16)
    assert not model.input_matrix.flags.writeable
    assert model.dim == 16 and model.nwords == 7845
    assert model.word_ngrams == (1 if name == "tiny_unigram" else 2)


def test_embed_sentences_rejects_a_plain_string(models):
    with pytest.raises(TypeError, match="list of strings"):
        models["tiny_unigram"].embed_sentences("wear jacket")


def test_empty_list_gives_empty_matrix(models):
    assert models["tiny_unigram"].embed_sentences([]).shape == (0, 16)


# -- files built here: labels, prune table, bigger vocabularies ------------------------------------
def write_model(
    path: Path,
    words: list[str],
    matrix: np.ndarray,
    *,
    labels: tuple[str, ...] = (),
    word_ngrams: int = 2,
    bucket: int = 7,
    prune_pairs: int = 0,
    version: int = 11,
    model_type: int = 4,
    magic: int = FASTTEXT_MAGIC,
) -> None:
    """A sent2vec .bin laid out as the format description says (output matrix included)."""
    dim = matrix.shape[1]
    parts = [struct.pack("<ii", magic, version)]
    parts.append(struct.pack("<9i", dim, 5, 5, 1, 10, word_ngrams, 2, model_type, bucket))
    parts.append(struct.pack("<iiid", 3, 6, 100, 1e-4))
    entries = [(w, 0) for w in words] + [(label, 1) for label in labels]
    parts.append(
        struct.pack(
            "<iiiqq",
            len(entries),
            len(words),
            len(labels),
            1000,
            prune_pairs if prune_pairs else -1,
        )
    )
    for count, (token, kind) in enumerate(entries):
        parts.append(token.encode() + b"\0" + struct.pack("<qb", 1000 - count, kind))
    parts.append(struct.pack("<ii", 0, 0) * prune_pairs)
    parts.append(struct.pack("<?qq", False, *matrix.shape) + matrix.astype("<f4").tobytes())
    output = np.ones((len(words), dim), dtype="<f4")
    parts.append(struct.pack("<?qq", False, *output.shape) + output.tobytes())
    path.write_bytes(b"".join(parts))


def small_model(tmp_path: Path, **options) -> tuple[Path, list[str], np.ndarray]:
    words = ["<PLACEHOLDER>", "walk", "run", "</s>", "jump"]
    bucket = options.get("bucket", 7)
    matrix = np.arange((len(words) + bucket + 1) * 3, dtype=np.float32).reshape(-1, 3) / 10
    path = tmp_path / "small.bin"
    write_model(path, words, matrix, **options)
    return path, words, matrix


def test_reads_a_file_written_from_the_format_description(tmp_path):
    path, _words, matrix = small_model(tmp_path, labels=("__label__x",), prune_pairs=2)
    model = Sent2VecModel(path)
    assert model.dim == 3 and model.nwords == 5 and model.bucket == 7
    assert b"__label__x" not in model.word_ids  # labels are never looked up
    walk, run = 1, 2
    bucket_row = 5 + ((walk * NGRAM_HASH_MULTIPLIER + run) % 2**64) % 7
    expected = matrix[[walk, run, bucket_row]].astype(np.float64).mean(0)
    got = model.embed_sentences(["walk __label__x run", "__label__x"])
    np.testing.assert_allclose(got[0], expected, rtol=0, atol=1e-6)
    assert not got[1].any()


def test_large_vocabulary_parse(tmp_path):
    words = ["<PLACEHOLDER>"] + [f"w{i}" for i in range(1, 200_000)]
    matrix = np.random.default_rng(0).standard_normal((len(words) + 1, 4)).astype(np.float32)
    path = tmp_path / "big.bin"
    write_model(path, words, matrix, word_ngrams=1, bucket=1)
    model = Sent2VecModel(path)
    assert len(model.word_ids) == 200_000
    np.testing.assert_allclose(
        model.embed_sentences(["w199999 w7"])[0], (matrix[199_999] + matrix[7]) / 2, atol=1e-6
    )


# -- errors ---------------------------------------------------------------------------------------
def test_missing_file_says_where_to_download(tmp_path):
    missing = tmp_path / "wiki_bigrams.bin"
    with pytest.raises(FileNotFoundError) as caught:
        Sent2VecModel(missing)
    message = str(caught.value)
    assert str(missing) in message
    assert WIKI_BIGRAMS_URL in message
    assert "wiki_bigrams.bin" in message
    assert MODEL_PATH_PARAMETER == "label_embedding.sent2vec.model_path"
    assert MODEL_PATH_PARAMETER in message
    assert "github.com/epfml/sent2vec" in message


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"magic": 12345}, "magic"),
        ({"version": 99}, "version 99"),
        ({"model_type": 1}, "not sent2vec"),
    ],
)
def test_bad_header_is_a_value_error_naming_the_file(tmp_path, options, reason):
    path, _, _ = small_model(tmp_path, **options)
    with pytest.raises(ValueError, match=reason) as caught:
        Sent2VecModel(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("keep_bytes", [4, 120, 300, -8])  # header, dictionary, matrix, output
def test_truncated_file_is_a_value_error(tmp_path, keep_bytes):
    path, _, _ = small_model(tmp_path)
    path.write_bytes(path.read_bytes()[:keep_bytes])
    with pytest.raises(ValueError) as caught:
        Sent2VecModel(path)
    assert str(path) in str(caught.value)


def test_text_file_is_rejected(tmp_path):
    path = tmp_path / "model.bin"
    path.write_text("this is not a model\n" * 10)
    with pytest.raises(ValueError, match="not a Sent2Vec/fastText model"):
        Sent2VecModel(path)


def test_epfml_backend_only_on_request(fixture_dir, sentences):
    try:
        import sent2vec  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="epfml"):
            Sent2VecModel(fixture_dir / "tiny_bigram.bin", backend="epfml")
        return
    model = Sent2VecModel(fixture_dir / "tiny_bigram.bin", backend="epfml")
    expected = np.load(fixture_dir / "tiny_bigram_vectors.npy")
    np.testing.assert_allclose(model.embed_sentences(sentences), expected, rtol=0, atol=1e-6)


def test_unknown_backend(fixture_dir):
    with pytest.raises(ValueError, match="backend"):
        Sent2VecModel(fixture_dir / "tiny_bigram.bin", backend="torch")
