"""Official action names -> the texts that get embedded."""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path

import pytest
from conftest import require_shared

from pose_zsl.text.label_text import PHRASE_FIXES, class_texts, readable_phrase

SHARED = Path(__file__).resolve().parents[2] / "shared"


def ntu120_names() -> list[str]:
    try:
        from pose_zsl.skeleton.ntu_tables import action_names
    except ImportError:  # the table module is written in parallel; its data file is already here
        table = resources.files("pose_zsl.skeleton") / "data" / "ntu120_actions.csv"
        with table.open(encoding="utf-8") as handle:
            return [row["name"] for row in csv.DictReader(handle)]
    return action_names(120)


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("eat meal/snack", "eat meal or snack"),
        ("standing up (from sitting position)", "standing up"),
        ("hands up (both hands)", "hands up"),
        ("high-five", "high five"),
        ("wear on glasses", "put on glasses"),
        ("put the palms together", "put the palms together"),
        ("pickup", "pick up"),
        ("grab other person\u2019s stuff", "grab other person's stuff"),
        ("finger-guessing game (playing rock-paper-scissors)", "play rock paper scissors"),
        ("pick up & throw", "pick up and throw"),
        ("  Side-Boxing ", "side boxing"),
        ("touch head (headache)", "touch head because of headache"),
    ],
)
def test_readable_phrase(name, phrase):
    assert readable_phrase(name) == phrase


@pytest.mark.parametrize("name", ["", "   ", "(only a note)"])
def test_name_without_text_is_an_error(name):
    with pytest.raises(ValueError, match="no text left"):
        readable_phrase(name)


def test_all_ntu120_phrases_are_clean_and_distinct():
    phrases = [readable_phrase(n) for n in ntu120_names()]
    assert len(phrases) == 120
    assert len(set(phrases)) == 120
    for phrase in phrases:
        assert phrase == phrase.lower().strip()
        assert not set(phrase) & set("()/-\u2019&_"), phrase
        assert "  " not in phrase


def test_fix_table_keys_are_real_ntu_names():
    canonical = {n.lower().replace("\u2019", "'") for n in ntu120_names()}
    assert set(PHRASE_FIXES) <= canonical


def test_generic_rules_match_the_fixture_phrases():
    """The Sent2Vec fixture lists the 120 names reduced by the same generic rules, written
    independently: every name without an explicit fix must come out identical."""
    path = SHARED / "fixtures" / "sent2vec" / "sentences.json"
    require_shared(path, "the Sent2Vec fixture phrases")
    expected = json.loads(path.read_text(encoding="utf-8"))[:120]
    names = ntu120_names()
    assert [readable_phrase(n, use_fixes=False) for n in names] == expected


def test_default_texts_are_the_phrases():
    texts = class_texts(["eat meal/snack", "drink water"])
    assert texts == [["eat meal or snack"], ["drink water"]]


def test_templates_and_custom_texts():
    texts = class_texts(
        ["eat meal/snack", "drink water", "clapping"],
        custom_texts={
            0: "a person eats food",
            "drink water": ["someone drinks from a cup", "sipping water"],
            "1": "a glass of water",
        },
        templates=["a person {name}", "{name}", "{official}"],
    )
    assert texts[0] == [
        "a person eat meal or snack",
        "eat meal or snack",
        "eat meal/snack",
        "a person eats food",
    ]
    assert texts[1] == [
        "a person drink water",
        "drink water",
        "drink water",
        "someone drinks from a cup",
        "sipping water",
        "a glass of water",
    ]
    assert texts[2] == ["a person clapping", "clapping", "clapping"]


def test_custom_key_by_readable_phrase():
    texts = class_texts(["eat meal/snack"], custom_texts={"eat meal or snack": "having lunch"})
    assert texts == [["eat meal or snack", "having lunch"]]


def test_custom_only_needs_every_class():
    names = ["drink water", "clapping"]
    assert class_texts(names, custom_texts={0: "sip", 1: "applaud"}, templates=[]) == [
        ["sip"],
        ["applaud"],
    ]
    with pytest.raises(ValueError, match=r"class 1 \('clapping'\) has no text"):
        class_texts(names, custom_texts={0: "sip"}, templates=[])


@pytest.mark.parametrize(
    ("custom", "match"),
    [
        ({"dance": "x"}, "matches no action"),
        ({5: "x"}, "outside 0..1"),
        ({0: ""}, "non-empty strings"),
        ({0: []}, "non-empty strings"),
    ],
)
def test_bad_custom_texts(custom, match):
    with pytest.raises(ValueError, match=match):
        class_texts(["drink water", "clapping"], custom_texts=custom)


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("a person", "neither"),
        ("{name} {nme}", "unknown fields"),
        ("{name", "invalid"),
        ("{0}", "unknown fields"),
    ],
)
def test_bad_templates(template, match):
    with pytest.raises(ValueError, match=match):
        class_texts(["drink water"], templates=[template])
