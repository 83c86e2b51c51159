"""The label-text choices of the grid's learned embeddings: what each one embeds."""

from __future__ import annotations

import pandas as pd
import pytest

from pose_zsl.pipelines.label_embedding.nodes import embed_action_labels
from pose_zsl.skeleton.msr import action_names
from pose_zsl.text.descriptions import class_descriptions
from pose_zsl.text.label_text import readable_phrase

PARAMS = {
    "embedder": "sentence_transformers",
    "sentence_transformers": {"model": None},
    "sent2vec": {"model_path": "unused.bin", "fallback_to_default": False},
    "descriptions_file": None,
    "templates": [],
}


@pytest.fixture(scope="module")
def msr_actions() -> pd.DataFrame:
    names = action_names()
    return pd.DataFrame(
        {"action_id": range(len(names)), "action_name": names, "dataset": "msr_action3d"}
    )


@pytest.mark.parametrize(
    ("text", "with_name", "with_descriptions"),
    [("name", True, False), ("descriptions", False, True), ("name+descriptions", True, True)],
)
def test_each_text_choice_embeds_what_it_names(msr_actions, text, with_name, with_descriptions):
    table = embed_action_labels(msr_actions, PARAMS, {"text": text}, name=f"v_{text}")
    descriptions = class_descriptions("msr_action3d", 20)
    for row in table.itertuples():
        expected = [readable_phrase(row.action_name)] if with_name else []
        expected += descriptions[row.action_id] if with_descriptions else []
        assert list(row.texts) == expected
    assert set(table["variant"]) == {f"v_{text}"}


def test_descriptions_change_the_vectors(msr_actions):
    names = embed_action_labels(msr_actions, PARAMS, {"text": "name"}, name="a")
    both = embed_action_labels(msr_actions, PARAMS, {"text": "descriptions"}, name="b")
    for a, b in zip(names["vector"], both["vector"], strict=True):
        assert float(a @ b) < 0.999  # unit vectors of different texts


def test_an_unknown_text_choice_names_the_parameter(msr_actions):
    with pytest.raises(ValueError, match=r"label_embedding\.variants\.\*\.text='names'"):
        embed_action_labels(msr_actions, PARAMS, {"text": "names"}, name="x")
