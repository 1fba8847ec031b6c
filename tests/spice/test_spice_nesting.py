"""The nesting of a record's text is measured before YAML reads it (spice/nesting.py), so a record
nested too deeply is refused in spice's own words whatever libyaml build PyYAML carries."""
import random

import pytest
import yaml

import spice
from spice.nesting import nesting_depth
from spice.records import MAX_DOCUMENT_DEPTH, dump_record, load_record

HEAD = ("format: spice/1\ntype: t\nuuid: 0b1c8a5e-8f43-4a0e-9d1f-3f1f0c7b8a11\nrevision: 1\n"
        "anchor: ''\ncreated: '2025-01-01T00:00:00.000000Z'\nauthor: a\ncomment: ''\nparent: null\n")
TOO_DEEP = "deep.yaml: not a spice record, nested deeper than 35 levels; refused before reading"


def event_depth(text):
    """The deepest nesting of collections a YAML reader finds."""
    depth = deepest = 0
    for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            deepest = max(deepest, depth)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return deepest


@pytest.mark.parametrize("data", [
    "{a: " + "[" * 5000 + "]" * 5000 + "}",             # libyaml's scanner reads these ahead of the reader
    "{a: " + "[" * 1200,                                # never closed
    '{"a":' + '[{"b":' * 700,                           # JSON-like keys, values right after the colon
    "{a: " + "['x', " * 1100,                            # quoted scalars between the brackets
    "\n  k: |\n    text\n  j: " + "[" * 1500,              # after a block scalar
    "\n  k: it's\n  j: " + "{" * 1500,                   # after a plain scalar holding a quote
    "\n" + "".join(" " * (i + 2) + "k:\n" for i in range(1200)) + " " * 1202 + "v",  # block mappings
])
def test_deep_nesting_is_refused_in_spice_words_whatever_libyaml_does(data):
    with pytest.raises(spice.SpiceRecordError) as caught:
        load_record(HEAD + "data: " + data + "\n", "deep.yaml")
    assert str(caught.value) == TOO_DEEP


@pytest.mark.parametrize("value", [
    "[" * 60, "]" * 60 + "[" * 60, "it's " + "{" * 60, "a: [b # " + "[" * 60, "x\n" + "[" * 60 + "\ny",
    "\"'" + "[" * 60,
])
def test_brackets_inside_text_are_not_nesting(value):
    record = spice.Collection(f"memory://nest-{random.getrandbits(32)}").seed(
        "t", "", s=value, items=[value, {"k": value}], comment=value)
    for style in (None, False, True):  # as written, in block style, in flow style
        text = dump_record(record) if style is None else yaml.safe_dump(
            record.to_dict(), default_flow_style=style, allow_unicode=True, width=40)
        assert nesting_depth(text, limit=MAX_DOCUMENT_DEPTH) <= event_depth(text) == 4  # record, data, items, {k}
        assert load_record(text, "ok.yaml").data == record.data


def test_a_block_scalar_of_brackets_is_text():
    text = HEAD + "data:\n  s: |\n    " + "[" * 60 + "\n\n    " + "{" * 60 + "\n  t: [1, [2]]\n"
    assert nesting_depth(text, limit=100) == event_depth(text) == 4  # record, data, t, [2]
    assert load_record(text, "ok.yaml").data["s"].startswith("[" * 60)


def test_the_measure_never_exceeds_what_a_reader_finds():
    rnd = random.Random(7)
    words = ["[", "]", "{", "}", "'", '"', ": ", "#", " #", "- ", "?", "|", ">", "\n", "&x", "*x",
             "!t", ",", "a", "-1", "it's"]

    def value(depth):
        if depth > 5 or rnd.random() < 0.4:
            return "".join(rnd.choice(words) for _ in range(rnd.randint(0, 6)))
        if rnd.random() < 0.5:
            return [value(depth + 1) for _ in range(rnd.randint(0, 3))]
        return {value(6): value(depth + 1) for _ in range(rnd.randint(0, 3))}

    for _ in range(300):
        tree = {"data": value(0)}
        for style in (None, False, True):
            text = yaml.safe_dump(tree, default_flow_style=style, width=rnd.choice([30, 1000]))
            measured, found = nesting_depth(text, limit=100), event_depth(text)
            assert measured <= found, text  # never refuses what the reader accepts
            if style is True:
                assert measured == found, text  # flow nesting measured exactly
