"""Class labels as the text that gets embedded.

Official action names are written for a table, not for a language model: "eat meal/snack",
"standing up (from sitting position)", "high-five". :func:`readable_phrase` turns them into
plain lower-case phrases with a few generic rules plus a small table of explicit fixes, and
:func:`class_texts` returns, per class, the exact list of strings to embed (the readable phrase
through one or more templates, plus any user-supplied descriptions), so the embedded text is
recorded next to each label vector.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence

#: Official name (lower-cased, curly apostrophes straightened) -> phrase, where the generic
#: rules would lose or garble the meaning. Parenthesised notes that *are* the action stay in.
PHRASE_FIXES: dict[str, str] = {
    "pickup": "pick up",
    "wear on glasses": "put on glasses",
    "hopping (one foot jumping)": "hopping on one foot",
    "check time (from watch)": "check time on watch",
    "cross hands in front (say stop)": "cross hands in front to say stop",
    "use a fan (with hand or paper)/feeling warm": "fan oneself with hand or paper",
    "cutting paper (using scissors)": "cutting paper with scissors",
    "hush (quite)": "hush to be quiet",
    "touch head (headache)": "touch head because of headache",
    "touch chest (stomachache/heart pain)": "touch chest because of stomachache or heart pain",
    "touch back (backache)": "touch back because of backache",
    "touch neck (neckache)": "touch neck because of neckache",
    "nausea or vomiting condition": "nausea or vomiting",
    "finger-guessing game (playing rock-paper-scissors)": "play rock paper scissors",
}

DEFAULT_TEMPLATES: tuple[str, ...] = ("{name}",)

_PARENTHESISED = re.compile(r"\([^()]*\)")
_SPACES = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^\w' ]+")


def _canonical(name: str) -> str:
    return _SPACES.sub(" ", name.replace("\u2019", "'").replace("\u2018", "'")).strip().lower()


def readable_phrase(name: str, use_fixes: bool = True) -> str:
    """Readable lower-case phrase for an official action name.

    Generic rules, applied when :data:`PHRASE_FIXES` has no entry (or ``use_fixes`` is False):
    lower-case, straighten curly
    apostrophes, drop parenthesised notes ("hands up (both hands)" -> "hands up"), ``/`` becomes
    " or " ("eat meal/snack" -> "eat meal or snack"), ``&`` becomes " and ", ``-`` and ``_``
    become spaces ("high-five" -> "high five"), and whitespace is collapsed.

    Raises:
        ValueError: the name is empty or reduces to nothing.
    """
    canonical = _canonical(name)
    if use_fixes and canonical in PHRASE_FIXES:
        return PHRASE_FIXES[canonical]
    phrase = _PARENTHESISED.sub(" ", canonical)
    phrase = re.sub(r"\s*/\s*", " or ", phrase)
    phrase = re.sub(r"\s*&\s*", " and ", phrase)
    phrase = phrase.replace("-", " ").replace("_", " ")
    phrase = _SPACES.sub(" ", phrase).strip()
    if not phrase:
        raise ValueError(f"action name {name!r} has no text left to embed")
    return phrase


def normalise_label(text: str) -> str:
    """Comparable form of an action name: :func:`readable_phrase` (lower case, notes in
    parentheses dropped, ``/`` -> "or", ...) without punctuation. ``"Put on a hat/cap."`` and
    ``"put on a hat or cap"`` are the same label. The one rule for "the same class name":
    free-text candidates against training classes, and the classes of pooled datasets."""
    phrase = readable_phrase(text)
    return _SPACES.sub(" ", _NON_WORD.sub(" ", phrase)).strip()


def _custom_lookup(
    custom_texts: Mapping[int | str, str | Sequence[str]] | None,
    action_names: Sequence[str],
) -> dict[int, list[str]]:
    """Resolve user keys (0-based id, official name or readable phrase) to class ids."""
    if not custom_texts:
        return {}
    by_name: dict[str, int] = {}
    for action_id, name in enumerate(action_names):
        by_name.setdefault(_canonical(name), action_id)
        by_name.setdefault(readable_phrase(name), action_id)
    resolved: dict[int, list[str]] = {}
    for key, value in custom_texts.items():
        if isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit()):
            action_id = int(key)
            if not 0 <= action_id < len(action_names):
                raise ValueError(
                    f"custom label text key {key!r}: action id outside 0..{len(action_names) - 1}"
                )
        elif isinstance(key, str) and _canonical(key) in by_name:
            action_id = by_name[_canonical(key)]
        else:
            raise ValueError(
                f"custom label text key {key!r} matches no action id, official name or phrase"
            )
        texts = [value] if isinstance(value, str) else list(value)
        if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
            raise ValueError(f"custom label text for {key!r} must be non-empty strings: {value!r}")
        resolved.setdefault(action_id, []).extend(texts)
    return resolved


def _check_template(template: str) -> None:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ValueError(f"label template {template!r} is invalid ({error})") from None
    fields = {field for _, field, _, _ in parsed if field is not None}
    unknown = fields - {"name", "official"}
    if unknown:
        raise ValueError(
            f"label template {template!r} is invalid: unknown fields {sorted(unknown)}; use "
            "{name} (readable phrase) and {official} (official name)"
        )
    if not fields:
        raise ValueError(
            f"label template {template!r} contains neither {{name}} nor {{official}}, "
            "so every class would get the same text"
        )


def _apply_template(template: str, phrase: str, official: str) -> str:
    try:
        return template.format(name=phrase, official=official)
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(
            f"label template {template!r} is invalid ({error!r}); use the fields {{name}} "
            "(readable phrase) and {official} (official name)"
        ) from None


def class_texts(
    action_names: Sequence[str],
    custom_texts: Mapping[int | str, str | Sequence[str]] | None = None,
    templates: Sequence[str] | None = DEFAULT_TEMPLATES,
) -> list[list[str]]:
    """Per class (0-based id = position in ``action_names``), the exact texts to embed.

    Each class gets ``template.format(name=<readable phrase>, official=<official name>)`` for
    every template (default just the phrase), followed by its user-supplied texts from
    ``custom_texts`` (keyed by 0-based id, official name or readable phrase; a string or a list
    of strings). Several texts of one class are averaged at embedding time. With
    ``templates=[]`` only the custom texts are used, and every class must then have some.

    Raises:
        ValueError: an unknown custom key, an empty text, a template that is invalid or lacks
            ``{name}``/``{official}``, or a class left without any text.
    """
    templates = list(DEFAULT_TEMPLATES if templates is None else templates)
    for template in templates:
        _check_template(template)
    custom = _custom_lookup(custom_texts, action_names)
    result: list[list[str]] = []
    for action_id, official in enumerate(action_names):
        phrase = readable_phrase(official)
        texts = [_apply_template(t, phrase, official) for t in templates]
        texts += custom.get(action_id, [])
        if not texts:
            raise ValueError(
                f"class {action_id} ({official!r}) has no text to embed: templates is empty "
                "and custom_texts has no entry for it"
            )
        result.append(texts)
    return result
