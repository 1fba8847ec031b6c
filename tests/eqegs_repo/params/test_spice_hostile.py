"""Hostile and oversized spice records (issue 12 rows 1, 2, 9, 15): one bad file breaks only
itself, and the writer refuses what readers would refuse."""
import io
import os
import subprocess
import sys
import textwrap
import warnings

import fsspec
import pytest

import spice
from eqegs_repo import Repository
from eqegs_repo.cli.main import main as eqegs_main
from spice.records import MAX_DATA_NODES
from tests.helpers import ROOT, treeutil

PROPOSAL = "2025A1234"
GOOD = """\
format: spice/1
type: q_range
uuid: 00000000-0000-4000-8000-000000000001
revision: 1
anchor: ''
created: '2025-01-01T00:00:00.000000Z'
author: a
comment: ''
parent: null
schema_version: 1
data: {q_min: 10.0, q_max: 14.0}
"""
# nine levels of ten: 10**9 values once expanded
BOMB = "[" + ", ".join(["&l0 [x, x, x, x, x, x, x, x, x, x]"] + [
    f"&l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]) + "]"
BOMB_KEYS = ("format", "type", "uuid", "revision", "anchor", "created", "author", "comment",
             "parent", "data")


def with_value(key, value, text=GOOD):
    """GOOD with the line of ``key`` given ``value`` (YAML text)."""
    return "".join(f"{key}: {value}\n" if line.startswith(f"{key}:") else line + "\n"
                   for line in text.splitlines())


def isolated(code, *args, stdin=""):
    """Run Python ``code`` in a subprocess with a hard time limit (20 s) and a 3 GB memory
    limit, so that a regression (a hang, a crash, memory growth) fails the test, never the run.
    Returns the JSON the code prints last."""
    import json

    prelude = ("import json, resource, sys\n"
               "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n")
    done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code), *args],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          input=stdin, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


_LOAD_ALL = """
    from spice.records import load_record
    out = {}
    for name, text in json.loads(sys.stdin.read()).items():
        try:
            out[name] = repr(load_record(text, name + ".yaml"))
        except Exception as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out))
"""


def test_alias_bomb_in_any_key_is_refused_before_it_is_expanded():
    import json

    texts = {f"bomb-{key}": with_value(key, BOMB) for key in BOMB_KEYS}
    texts["as-key"] = GOOD + f"? {BOMB}\n: 1\n"  # a bomb as a mapping key
    big_text = with_value("comment", "&s '" + "x" * 400_000 + "'")
    texts["strings"] = with_value("data", "{a: [*s, *s, *s]}", big_text)
    texts["recursive"] = with_value("data", "&r {a: *r}")
    texts["shared"] = with_value("data", "{q_min: &v 10.0, q_max: *v}")  # small: readable
    found = isolated(_LOAD_ALL, stdin=json.dumps(texts))
    for name in [f"bomb-{key}" for key in BOMB_KEYS] + ["as-key"]:
        assert found[name].startswith(f"SpiceRecordError: {name}.yaml: not a spice record, it "
                                      "would expand (through aliases) to more than 200064 "
                                      "values; refused before reading"), found[name]
        assert len(found[name]) < 300
    assert "more than 1000000 characters" in found["strings"]
    assert "recursive or undefined alias" in found["recursive"]
    assert "{'q_min': 10.0, 'q_max': 10.0}" in found["shared"]


def test_deeply_nested_flow_is_refused_without_crashing_the_reader():
    import json

    deep = with_value("data", "{a: " + "[" * 300_000 + "]" * 300_000 + "}")
    found = isolated(_LOAD_ALL, stdin=json.dumps({"deep": deep}))  # libyaml alone would crash
    assert found["deep"] == ("SpiceRecordError: deep.yaml: not a spice record, nested deeper "
                             "than 35 levels; refused before reading")


def test_dumper_writes_shared_values_out_in_full():
    shared = [1, 2]
    record = spice.Collection(f"memory://dump-{os.urandom(4).hex()}").seed("t", "", a=shared,
                                                                          b=shared)
    text = spice.dump_record(record)
    assert "&" not in text and "*" not in text


_LIST_PROPOSAL = """
    import io, time, warnings
    from eqegs_repo import Repository
    from eqegs_repo.cli.main import main
    root = sys.argv[1] + "/{proposal}/{sample}"
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = Repository(root)["2025A1234"].table()
        status = Repository(root)["2025A1234"]["S002"].spice.status
    elapsed = time.perf_counter() - start
    sys.stdout, out = io.StringIO(), sys.stdout
    code = main(["ls", root, "2025A1234"])
    sys.stdout = out
    print(json.dumps({"rows": len(table), "status": status, "elapsed": elapsed, "ls": code,
                      "warnings": [str(w.message) for w in caught]}))
"""


def test_proposal_with_bombs_in_every_key_still_lists(tmp_path):
    """Row 1: every reader of the proposal works; each bomb file is skipped with a warning
    naming it. Run in a subprocess with a hard time limit and a memory limit."""
    treeutil.write_tree(fsspec.filesystem("file"), str(tmp_path), {PROPOSAL: ["S001", "S002"]})
    folder = tmp_path / PROPOSAL / ".spice"
    folder.mkdir()
    (folder / "q_range..r000001.yaml").write_text(GOOD)
    for key in BOMB_KEYS:
        (folder / f"bomb-{key}.yaml").write_text(with_value(key, BOMB))
    result = isolated(_LIST_PROPOSAL, str(tmp_path))
    assert result["rows"] == 2 and result["status"] == "complete" and result["ls"] == 0
    for key in BOMB_KEYS:
        named = [w for w in result["warnings"] if f"bomb-{key}.yaml" in w]
        assert named and "refused before reading" in named[0] and len(named[0]) < 500
    print(f"table + view with {len(BOMB_KEYS)} bombs: {result['elapsed']:.2f} s")


@pytest.mark.parametrize("key, value, reason", [
    ("data", "{q_min: " + "9" * 5000 + "}", "4300 digits"),
    ("data", "{q_min: " + "9" * 100 + "}", "more than 60 digits"),
    ("created", "2025-13-45", "key 'created'"),
    ("created", "'2025-02-30T00:00:00Z'", "key 'created'"),
    ("created", "0001-01-01T00:00:00+05:00", "outside the years"),
], ids=["int-5000-digits", "int-100-digits", "month-13", "february-30", "before-year-1"])
def test_bad_number_or_date_skips_only_that_file(tmp_path, key, value, reason):
    """Row 2: table(), ls, a sample's view and `eqegs spice show` work; the file is named."""
    treeutil.write_tree(fsspec.filesystem("file"), str(tmp_path), {PROPOSAL: ["S001", "S002"]})
    url = f"{tmp_path}/{{proposal}}/{{sample}}"
    repo = Repository(url)
    repo[PROPOSAL].spice.seed("q_range", "", q_min=10.0, q_max=14.0)
    bad = tmp_path / PROPOSAL / ".spice" / "bad.yaml"
    bad.write_text(with_value("uuid", "bad-1", with_value(key, value)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh = Repository(url)[PROPOSAL]
        assert len(fresh.table()) == 2
        assert fresh["S002"].spice.q_range.q_max == 14.0
        problems = fresh.spice.problems
    assert [p.path for p in problems] == [str(bad)] and reason in problems[0].message
    assert any(str(bad) in str(w.message) for w in caught)
    out, err = io.StringIO(), io.StringIO()
    sys_out, sys_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        codes = [eqegs_main(["ls", url, PROPOSAL]),
                 eqegs_main(["spice", "show", url, PROPOSAL, "S002"])]
    finally:
        sys.stdout, sys.stderr = sys_out, sys_err
    assert codes == [0, 0] and "Traceback" not in err.getvalue()
    assert f"! skipped {bad}" in out.getvalue() and "14" in out.getvalue()


def test_write_limits_equal_read_limits(tmp_path):
    """Row 9: what readers skip is refused at write, with a clear error; nothing is stored."""
    writer = spice.Collection(str(tmp_path))
    with pytest.raises(spice.SpiceValidationError, match=r"would be \d+ bytes \(comment: "
                                                         r"1000001 characters\).*1000000-byte"):
        writer.seed("t", "", a=1, comment="x" * 1_000_001)
    with pytest.raises(spice.SpiceValidationError, match=f"more than {MAX_DATA_NODES} values"):
        writer.seed("t", "", a=list(range(MAX_DATA_NODES)))
    with pytest.raises(spice.SpiceValidationError, match=r"t data.a = <integer of about 101"):
        writer.seed("t", "", a=10 ** 100)
    deep = 1
    for _ in range(40):
        deep = [deep]
    with pytest.raises(spice.SpiceValidationError, match="nested deeper than 32"):
        writer.seed("t", "", a=deep)
    with pytest.raises(spice.SpiceValidationError, match="t data.a is a set"):
        writer.seed("t", "", a={1, 2})
    with pytest.raises(spice.SpiceValidationError, match="'comment' must be text"):
        writer.seed("t", "", a=1, comment=5)
    assert os.listdir(tmp_path) == []
    # just inside the limits: written, and read back by another process's collection
    values = [0] * (MAX_DATA_NODES - 2)  # the list and the mapping count too
    written = writer.seed("t", "", a=values, comment="y" * 600_000)
    import numpy as np

    converted = writer.seed("u", "", a=(1, 2), b=np.arange(3), c=np.float32(0.5),
                            d=np.float64(1.5), e=np.bool_(True), f=np.int64(7))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no file may be skipped
        reader = spice.Collection(str(tmp_path))
        assert reader.view("S1").t.a == values and reader.problems == []
        assert reader.get(written.uuid).comment == "y" * 600_000
        assert reader.get(converted.uuid).data == {"a": [1, 2], "b": [0, 1, 2], "c": 0.5,
                                                   "d": 1.5, "e": True, "f": 7}


def test_foreign_record_with_a_huge_revision_does_not_block_the_anchor(tmp_path):
    """Row 15: a 300-digit revision is skipped on read; the anchor stays updatable."""
    c = spice.Collection(str(tmp_path), listing_ttl=0)
    first = c.seed("t", "S1", a=1)
    foreign = with_value("uuid", "f-1", with_value("revision", "1" + "0" * 299,
                                                   spice.dump_record(first)))
    (tmp_path / "foreign.yaml").write_text(foreign)
    with pytest.warns(spice.SpiceWarning, match="foreign.yaml.*integer from 1 to 999999999"):
        c.refresh()
    assert c.update("t", "S1", a=2).revision == 2
    assert [os.path.basename(p.path) for p in c.problems] == ["foreign.yaml"]


def test_anchor_too_long_for_a_file_name_gives_a_clear_error(tmp_path):
    c = spice.Collection(str(tmp_path))
    longest = "S" * (255 - len("t..r999999999.yaml"))
    assert c.seed("t", longest, a=1).anchor == longest  # the longest anchor that fits
    for anchor in ("S" + longest, "é" * 100):
        with pytest.raises(spice.SpiceValidationError, match="is too long") as info:
            c.seed("t", anchor, a=1)
        message = str(info.value)
        assert f"({len(anchor)} characters)" in message and anchor[:20] in message
        assert "at most 237 characters" in message and len(message) < 400
    assert len(os.listdir(tmp_path)) == 1


def test_unwritable_store_gives_a_store_error_naming_the_file(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(spice.SpiceStoreError, match="cannot list the spice records in "
                                                    f"{tmp_path}/file: Not a directory"):
        spice.Collection(str(tmp_path / "file")).seed("t", "", a=1)
    store = spice.LocalStore(str(tmp_path / "file"))
    store.list_files = lambda: ({}, [])  # as if it were listed fine: the write then fails
    with pytest.raises(spice.SpiceStoreError, match="cannot write .*not a folder") as info:
        spice.Collection(store).seed("t", "", a=1)
    assert isinstance(info.value, OSError) and "t..r000001.yaml" in str(info.value)


def test_cli_refuses_huge_values_and_long_anchors_in_one_line(tmp_path, capsys):
    treeutil.write_tree(fsspec.filesystem("file"), str(tmp_path), {PROPOSAL: ["S001"]})
    base = ["spice", "update", str(tmp_path), PROPOSAL, "e_spectrum", "--anchor"]
    assert eqegs_main(base + ["", "n_mc=" + "9" * 5000]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("eqegs: error: spice: e_spectrum.n_mc = '9999") and "\n" not in err
    assert "5000 characters" in err and len(err) < 300
    assert eqegs_main(base + ["", "n_mc=" + "9" * 70]) == 1
    assert "at most 60 digits" in capsys.readouterr().err
    assert eqegs_main(base + ["S" * 300, "n_mc=200"]) == 1
    err = capsys.readouterr().err.strip()
    assert "(300 characters) is too long" in err and "\n" not in err


def test_spice_exports_what_users_call_and_keeps_internals_in_their_modules():
    public = {name for name in dir(spice) if not name.startswith("_")}
    modules = {"collection", "diff", "display", "errors", "index", "natural", "nesting", "records",
               "schema", "store", "view", "writing"}
    assert public - modules == set(spice.__all__)
    for name in ("Collection", "ResolvedView", "Record", "TypeSchema", "LocalStore",
                 "SpiceConflict", "SpiceStoreError", "natural_key"):
        assert name in spice.__all__
    for name in ("RecordIndex", "Resolution", "canonical_name", "DEFAULT_ANCHOR",
                 "default_author", "diff_records", "diff_views", "FORMAT"):
        assert not hasattr(spice, name), name
    from spice.index import RecordIndex, Resolution  # noqa: F401 - reachable via modules
    from spice.store import canonical_name

    assert canonical_name("roi", "", 3) == "roi..r000003.yaml"
