"""Stand-alone reader of Sent2Vec ``.bin`` models (the fastText file format, model ``sent2vec``).

The paper embeds class labels with the ``sent2vec_wiki_bigrams`` model (16 GB, 700-D). This
reader memory-maps the input matrix at its byte offset, so loading costs the vocabulary parse
only (a few seconds for the wiki model) and RAM holds just the rows a sentence touches. The
output matrix, which only training needs, is never read.

Sentence vectors follow the ``epfml/sent2vec`` Python module exactly (commit 9efbc2d, checked
bit for bit against its output in ``shared/fixtures/sent2vec``):

1. the string is encoded as UTF-8 (characters that cannot be encoded are dropped);
2. everything after the first ``\\n`` is ignored; the bytes are split on space, ``\\r``, ``\\t``,
   ``\\v``, ``\\f`` and NUL (runs count as one); a token ``</s>`` ends the sentence;
3. tokens are matched byte for byte against the word entries (no lower-casing); unknown tokens
   are dropped *before* word n-grams are formed;
4. for ``wordNgrams`` >= 2, every run of up to ``wordNgrams`` consecutive ids hashes to the bucket
   row ``nwords + (h mod bucket)`` with ``h <- h * 116049371 + w_j`` in unsigned 64-bit arithmetic;
5. the vector is the plain mean of the selected rows, accumulated in float32 in the library's
   order (unigrams, then n-grams) and scaled by ``float32(1 / count)``; no known token gives the
   zero vector. Vectors are not normalised.
"""

from __future__ import annotations

import logging
import mmap
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

FASTTEXT_MAGIC = 793712314
SUPPORTED_VERSIONS = (11, 12)  # sent2vec writes 11; fastText 12 keeps the same layout
SENT2VEC_MODEL_ID = 4
NGRAM_HASH_MULTIPLIER = 116049371
END_OF_SENTENCE = b"</s>"

#: The parameter that points the ``label_embedding`` pipeline at the model file.
MODEL_PATH_PARAMETER = "label_embedding.sent2vec.model_path"
WIKI_BIGRAMS_URL = "https://drive.google.com/open?id=0B6VhzidiLvjSaER5YkJUdWdPWU0"
DOWNLOAD_HINT = (
    "Download the paper's model 'sent2vec_wiki_bigrams' (wiki_bigrams.bin, 16 GB, 700-D) from "
    f"{WIKI_BIGRAMS_URL} (the link given in the README of https://github.com/epfml/sent2vec) "
    f"and set the parameter '{MODEL_PATH_PARAMETER}' to the downloaded file."
)

_ARGS_INT_FIELDS = (
    "dim",
    "ws",
    "epoch",
    "min_count",
    "neg",
    "word_ngrams",
    "loss",
    "model",
    "bucket",
)
_SEPARATORS_TO_SPACE = bytes.maketrans(b"\r\t\x0b\x0c\x00", b"     ")
_U64_MASK = (1 << 64) - 1


def tokenize(sentence: str) -> list[bytes]:
    """The byte tokens the library reads from ``sentence``, up to the end of the sentence."""
    data = sentence.encode("utf-8", errors="ignore").split(b"\n", 1)[0]
    tokens: list[bytes] = []
    for token in data.translate(_SEPARATORS_TO_SPACE).split(b" "):
        if not token:
            continue
        if token == END_OF_SENTENCE:
            break
        tokens.append(token)
    return tokens


class Sent2VecModel:
    """A Sent2Vec ``.bin`` model: ``embed_sentences(list[str]) -> float32 (n, dim)``.

    Args:
        path: the ``.bin`` file (e.g. ``wiki_bigrams.bin``).
        backend: ``"numpy"`` (default, this reader) or ``"epfml"`` (the upstream C++ extension
            module ``sent2vec``, used only when asked for and importable).

    Raises:
        FileNotFoundError: the file does not exist (the message says where to download it).
        ValueError: not a fastText/sent2vec file, an unsupported version, model type or
            quantised matrix, or a truncated file; the message names the file.
    """

    def __init__(self, path: str | Path, backend: str = "numpy") -> None:
        self.path = Path(path)
        if backend not in ("numpy", "epfml"):
            raise ValueError(f"backend must be 'numpy' or 'epfml', got {backend!r}")
        if not self.path.is_file():
            raise FileNotFoundError(f"Sent2Vec model file not found: {self.path}. {DOWNLOAD_HINT}")
        self.backend = backend
        self._epfml = None
        self._load()
        if backend == "epfml":
            try:
                import sent2vec  # the epfml extension; optional
            except ImportError as error:
                raise ImportError(
                    "backend='epfml' needs the 'sent2vec' extension module from "
                    "https://github.com/epfml/sent2vec; use backend='numpy' (the default)"
                ) from error
            self._epfml = sent2vec.Sent2vecModel()
            self._epfml.load_model(str(self.path))

    # -- loading ---------------------------------------------------------------------------
    def _fail(self, reason: str) -> ValueError:
        return ValueError(f"{self.path}: {reason}")

    def _load(self) -> None:
        file_size = self.path.stat().st_size
        with open(self.path, "rb") as handle:
            if file_size < 8:
                raise self._fail("not a Sent2Vec/fastText model (file shorter than its signature)")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                matrix_offset = self._parse_header_and_dictionary(view, file_size)
                quantised, rows, cols = struct.unpack_from("<?qq", view, matrix_offset)
        if quantised:
            raise self._fail("quantised (product-quantised) input matrices are not supported")
        data_offset = matrix_offset + 17
        if cols != self.dim or rows < self.nwords + (self.bucket if self.word_ngrams > 1 else 0):
            raise self._fail(
                f"input matrix header {rows} x {cols} does not match dim {self.dim}, "
                f"{self.nwords} words and {self.bucket} buckets"
            )
        output_offset = data_offset + rows * cols * 4
        if output_offset + 17 > file_size:
            raise self._fail(
                f"truncated: the input matrix ends at byte {output_offset}, the file has "
                f"{file_size} bytes (an interrupted download?)"
            )
        # Only the output matrix's header is read: its size shows an incomplete download.
        with open(self.path, "rb") as handle:
            handle.seek(output_offset)
            _, out_rows, out_cols = struct.unpack("<?qq", handle.read(17))
        expected_size = output_offset + 17 + out_rows * out_cols * 4
        if out_rows < 0 or out_cols != cols or file_size < expected_size:
            raise self._fail(
                f"truncated or corrupt output matrix ({out_rows} x {out_cols}): the file should "
                f"have {expected_size} bytes, it has {file_size} (an interrupted download?)"
            )
        self.input_matrix: np.memmap = np.memmap(
            self.path, dtype="<f4", mode="r", offset=data_offset, shape=(rows, cols)
        )
        logger.info(
            "Sent2Vec model %s: %d words, %d-D, wordNgrams %d, %d buckets (memory-mapped)",
            self.path,
            self.nwords,
            self.dim,
            self.word_ngrams,
            self.bucket,
        )

    def _parse_header_and_dictionary(self, view: mmap.mmap, file_size: int) -> int:
        magic, version = struct.unpack_from("<ii", view, 0)
        if magic != FASTTEXT_MAGIC:
            raise self._fail(
                f"not a Sent2Vec/fastText model (magic {magic}, expected {FASTTEXT_MAGIC})"
            )
        if version not in SUPPORTED_VERSIONS:
            raise self._fail(
                f"unsupported fastText format version {version} (supported: {SUPPORTED_VERSIONS})"
            )
        args = dict(zip(_ARGS_INT_FIELDS, struct.unpack_from("<9i", view, 8), strict=True))
        if args["model"] != SENT2VEC_MODEL_ID:
            raise self._fail(
                f"model type {args['model']} is not sent2vec ({SENT2VEC_MODEL_ID}); "
                "fastText word-vector models need character n-grams, which this reader lacks"
            )
        self.dim: int = args["dim"]
        self.word_ngrams: int = args["word_ngrams"]
        self.bucket: int = args["bucket"]
        if self.dim <= 0 or self.word_ngrams <= 0 or (self.word_ngrams > 1 and self.bucket <= 0):
            raise self._fail(f"implausible training arguments {args}")
        # after the 9 ints: minn, maxn, lrUpdateRate (i32) and t (f64)
        position = 8 + 9 * 4 + 3 * 4 + 8
        size, nwords, nlabels, _ntokens, prune_size = struct.unpack_from("<iiiqq", view, position)
        position += 28
        if size < 0 or nwords < 0 or nlabels < 0 or size != nwords + nlabels:
            raise self._fail(
                f"corrupt dictionary header (size {size}, nwords {nwords}, nlabels {nlabels})"
            )
        self.nwords: int = nwords
        self.word_ids, position = self._parse_entries(view, position, size, file_size)
        if prune_size > 0:
            position += 8 * prune_size
        if position + 17 > file_size:
            raise self._fail("truncated before the input matrix")
        return position

    def _parse_entries(
        self, view: mmap.mmap, position: int, size: int, file_size: int
    ) -> tuple[dict[bytes, int], int]:
        """Word -> id for the word entries, and the byte offset after the last entry."""
        word_ids: dict[bytes, int] = {}
        find = view.find
        for index in range(size):
            end = find(b"\0", position)
            if end < 0 or end + 10 > file_size:
                raise self._fail(f"truncated dictionary at entry {index} of {size}")
            if view[end + 9] == 0:  # entry type 0 = word; labels are never looked up
                word_ids[view[position:end]] = index
            position = end + 10
        return word_ids, position

    # -- embedding -------------------------------------------------------------------------
    def row_ids(self, sentence: str) -> list[int]:
        """Input-matrix rows averaged for ``sentence``: unigram rows, then word n-gram buckets."""
        word_ids = [self.word_ids[t] for t in tokenize(sentence) if t in self.word_ids]
        rows = list(word_ids)
        length = len(word_ids)
        for start in range(length):
            hashed = word_ids[start]
            for following in range(start + 1, min(length, start + self.word_ngrams)):
                hashed = (hashed * NGRAM_HASH_MULTIPLIER + word_ids[following]) & _U64_MASK
                rows.append(self.nwords + hashed % self.bucket)
        return rows

    def embed_sentence(self, sentence: str) -> np.ndarray:
        """float32 ``(dim,)`` vector of one sentence (zeros when no known token remains)."""
        vector = np.zeros(self.dim, dtype=np.float32)
        rows = self.row_ids(sentence)
        if not rows:
            return vector
        # Row by row in float32, as the library does: numpy's pairwise sum would differ by ~1 ulp.
        for row in self.input_matrix[np.asarray(rows, dtype=np.int64)]:
            vector += row
        vector *= np.float32(1.0 / len(rows))
        return vector

    def embed_sentences(self, sentences: Sequence[str]) -> np.ndarray:
        """float32 ``(len(sentences), dim)``: one row per sentence, not normalised."""
        if isinstance(sentences, str):
            raise TypeError("embed_sentences takes a list of strings, not one string")
        if self._epfml is not None:
            return np.asarray(self._epfml.embed_sentences(list(sentences)), dtype=np.float32)
        out = np.zeros((len(sentences), self.dim), dtype=np.float32)
        for i, sentence in enumerate(sentences):
            out[i] = self.embed_sentence(sentence)
        return out

    def __repr__(self) -> str:
        return f"Sent2VecModel({str(self.path)!r}, dim={self.dim}, wordNgrams={self.word_ngrams})"
