"""Records, natural order, schema checks and hostile files in a store."""
import os
import warnings

import pytest
import yaml

import spice
from spice import Field, Registry, TypeSchema
from spice.records import load_record


def test_natural_order_puts_s9_before_s10():
    keys = ["S10", "S9", "s1", "S100", "S2"]
    assert spice.natural_sorted(keys) == ["s1", "S2", "S9", "S10", "S100"]
    assert spice.natural_key("S01") != spice.natural_key("S1")  # total order, no ties


def test_record_round_trips_through_yaml():
    c = spice.Collection("memory://rt-" + os.urandom(4).hex())
    record = c.seed("roi", "S1", x0=1, name="a b", nested={"k": [1, 2.5, None]}, comment="c")
    text = spice.dump_record(record)
    assert load_record(text, "x.yaml") == record
    loaded = yaml.safe_load(text)
    assert list(loaded) == list(spice.records.RECORD_KEYS)
    assert loaded["parent"] is None and loaded["revision"] == 1


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d.update(revision="2"), "'revision' must be an integer from 1 to 999999999"),
    (lambda d: d.update(revision=True), "'revision' must be an integer from 1 to 999999999"),
    (lambda d: d.update(data=[1, 2]), "'data' must be a mapping"),
    (lambda d: d.pop("uuid"), "lacks key(s) uuid"),
    (lambda d: d.update(extra=1), "unknown key(s) 'extra'"),
    (lambda d: d.update(format="nx5d"), "expected format 'spice/1'"),
    (lambda d: d.update(created="yesterday"), "ISO 8601"),
    (lambda d: d.update(anchor=5), "'anchor' must be text"),
])
def test_malformed_records_are_refused_naming_the_key(mutate, fragment):
    good = {"format": "spice/1", "type": "roi", "uuid": "u1", "revision": 1, "anchor": "",
            "created": "2025-01-01T00:00:00Z", "author": "a", "comment": "", "parent": None,
            "data": {"x": 1}}
    mutate(good)
    with pytest.raises(spice.SpiceRecordError, match="bad.yaml") as info:
        spice.records.record_from_mapping(good, "bad.yaml")
    assert fragment in str(info.value)


def test_schema_refuses_bad_values_naming_field_value_and_range():
    schema = TypeSchema("q", 1, (
        Field("n", "int", "px", 1, minimum=1),
        Field("f", "float", "nm", 0.5, minimum=0, maximum=1, max_exclusive=True),
        Field("mode", "enum", "", "a", choices=("a", "b")),
        Field("pair", "list", "px", [0, 0], length=2, item=Field("i", "int", minimum=0)),
        Field("name", "str", "", "", pattern=r"[A-Za-z_]*"),
        Field("odd", "int", "", 3, odd=True),
    ))
    assert schema.validate({"n": 2.0, "f": 0}) == {"n": 2, "f": 0.0}
    cases = [({"n": 0}, "q.n = 0", "integer >= 1 (px)"),
             ({"n": 2.5}, "q.n = 2.5", "integer"),
             ({"n": True}, "q.n = True", "integer"),
             ({"f": 1.0}, "q.f = 1.0", "< 1"),
             ({"f": float("nan")}, "q.f = nan", "number"),
             ({"mode": "c"}, "q.mode = 'c'", "one of a, b"),
             ({"pair": [1]}, "q.pair = [1]", "list of 2"),
             ({"pair": [1, -1]}, "q.pair[1] = -1", "integer >= 0"),
             ({"name": "a-b"}, "q.name = 'a-b'", "matching"),
             ({"odd": 4}, "q.odd = 4", "odd integer"),
             ({"nope": 1}, "unknown field of type 'q' 'nope'", "known: n, f")]
    for data, where, allowed in cases:
        with pytest.raises(spice.SpiceValidationError) as info:
            schema.validate(data)
        assert where in str(info.value) and allowed in str(info.value), str(info.value)


def test_registry_strict_refuses_unknown_type_on_write():
    reg = Registry([TypeSchema("roi", 1, (Field("x0", "int", "px", 0),))])
    c = spice.Collection("memory://reg-" + os.urandom(4).hex(), registry=reg)
    with pytest.raises(spice.SpiceValidationError, match="unknown parameter type 'roj'.*roi"):
        c.seed("roj", x0=1)
    with pytest.raises(spice.SpiceValidationError, match="roi.x0 = 'a'"):
        c.seed("roi", x0="a")
    assert len(c) == 0


def _write(folder, name, payload):
    with open(os.path.join(folder, name), "wb") as handle:
        handle.write(payload)


def test_hostile_and_broken_files_are_skipped_and_reported(tmp_path):
    reg = Registry([TypeSchema("roi", 1, (Field("x0", "int", "px", 0, minimum=0),))])
    c = spice.Collection(str(tmp_path), registry=reg, listing_ttl=0)
    good = c.seed("roi", "", x0=3)
    marker = tmp_path / "pwned"
    folder = str(tmp_path)
    text = spice.dump_record(good)
    _write(folder, "apply.yaml", f"!!python/object/apply:os.system ['touch {marker}']\n".encode())
    _write(folder, "apply2.yaml", text.replace("data: {x0: 3}",
                                               f"data: !!python/object/apply:os.system "
                                               f"['touch {marker}']").encode())
    with open(os.path.join(folder, "big.yaml"), "wb") as handle:  # 50 MB, sparse
        handle.truncate(50 * 1024 * 1024)
    _write(folder, "types.yaml", text.replace("revision: 1", "revision: one").encode())
    _write(folder, "unknown.yaml", text.replace("type: roi", "type: foo")
           .replace(good.uuid, "u-unknown").encode())
    _write(folder, "range.yaml", text.replace("x0: 3", "x0: -1")
           .replace(good.uuid, "u-range").encode())
    _write(folder, "trunc.yaml", text[: len(text) // 2].encode())
    _write(folder, "latin1.yaml", "anchor: \xe9\xff".encode("latin-1"))
    _write(folder, "bomb.yaml", (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n").encode())
    _write(folder, "copy.yaml", text.encode())  # same uuid as the good record
    _write(folder, "notes.txt", b"hello")
    _write(folder, ".tmp-123.part", b"half a rec")  # stray temp file of a crashed writer
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh = spice.Collection(str(tmp_path), registry=reg)
        assert fresh.view("S1").roi.x0 == 3
        problems = {os.path.basename(p.path): p.message for p in fresh.problems}
    assert not marker.exists()
    assert set(problems) == {"apply.yaml", "apply2.yaml", "big.yaml", "types.yaml",
                             "unknown.yaml", "range.yaml", "trunc.yaml", "latin1.yaml",
                             "bomb.yaml", "copy.yaml", "notes.txt"}
    assert "safe loader" in problems["apply.yaml"] and "python/object/apply" in problems[
        "apply.yaml"]
    assert "52428800 bytes" in problems["big.yaml"] and "not read" in problems["big.yaml"]
    assert "'revision' must be an integer" in problems["types.yaml"]
    assert "unknown parameter type 'foo'" in problems["unknown.yaml"]
    assert "roi.x0 = -1" in problems["range.yaml"]
    assert "not UTF-8" in problems["latin1.yaml"]
    assert "already used" in problems["copy.yaml"]
    assert "not a record file" in problems["notes.txt"]
    assert len([w for w in caught if issubclass(w.category, spice.SpiceWarning)]) == 11
    assert all(str(tmp_path) in p.path for p in fresh.problems)
