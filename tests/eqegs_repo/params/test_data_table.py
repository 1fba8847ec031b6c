"""data_table.csv import under bad tables (issue 20: M2 duplicates by number, M3 every row checked
before anything is written, L8 size and row limits)."""
import os
import subprocess
import sys
import textwrap

import fsspec
import pytest

from eqegs_repo import Repository
from eqegs_repo.params import data_table
from eqegs_repo.params.data_table import DataTableError
from spice import SpiceError
from tests.helpers import ROOT, treeutil

HEADER = "sample_name, velocity, angle, comment\n"


def proposal(tmp_path, samples=("S001", "S002", "S003")):
    treeutil.write_tree(fsspec.filesystem("file"), str(tmp_path / "tree"),
                        {"2025A1234": list(samples)})
    return Repository(str(tmp_path / "tree") + "/{proposal}/{sample}")["2025A1234"]


def table(tmp_path, text):
    path = tmp_path / "data_table.csv"
    path.write_text(HEADER + text, encoding="utf-8")
    return str(path)


def refused(prop, path, dry_run):
    with pytest.raises(DataTableError) as caught:
        prop.spice.import_data_table(path, dry_run=dry_run)
    return caught.value


def test_rows_naming_one_sample_by_number_are_refused_naming_both_lines_and_the_sample(tmp_path):
    prop = proposal(tmp_path)
    path = table(tmp_path, "001,1,0,first\n002,1,0\n1,2,0,the same sample again\n")
    for dry_run in (True, False):
        error = refused(prop, path, dry_run)
        assert [(b.line, b.column, b.value) for b in error.bad] == [(4, "sample_name", "1")]
        assert (f"{path} line 4, column sample_name: found '1'; expected one row per sample; "
                "line 2 ('001') names sample S001 too") in str(error)
        assert "nothing was written" in str(error)
    assert len(prop.spice) == 0
    same_digits = table(tmp_path, "7,1,0\n002,1,0\n7,2,0\n")  # matches no sample: still one row
    assert "line 2 ('7') names sample_name 7 too" in str(refused(prop, same_digits, True))


def test_two_numbers_of_two_samples_are_not_duplicates(tmp_path):
    prop = proposal(tmp_path, ("S01", "S1"))  # the rule maps 01 -> S01 and 1 -> S1
    report = prop.spice.import_data_table(table(tmp_path, "01,1,0\n1,2,0\n"))
    assert [(r.sample_name, key) for r, key, _ in report.written] == [("01", "S01"), ("1", "S1")]


def test_a_bad_row_anywhere_writes_nothing_and_every_bad_cell_is_named(tmp_path):
    prop = proposal(tmp_path)
    path = table(tmp_path, "001,1,0,fine\n002,2000000,0,out of range\n003,1,-1,negative\n"
                           f"003,{'9' * 5000},x,too many digits\n,1,0\n")
    error = refused(prop, path, dry_run=False)
    assert [(b.line, b.column, b.value) for b in error.bad] == [
        (3, "velocity", "2000000"), (4, "angle", "-1"), (5, "velocity", "9" * 5000),
        (5, "angle", "x"), (6, "sample_name", "")]
    message = str(error)
    assert "5 bad cell(s) in 4 row(s); nothing was written" in message
    assert (f"{path} line 3, column velocity: found '2000000'; expected integer >= 0 and "
            "<= 1000000, written in the ASCII digits 0-9") in message
    assert len(message) < 2000  # the 5000 digits are cut in the message
    assert len(prop.spice) == 0  # line 2 was valid, and is not written either
    assert str(refused(prop, path, dry_run=True)) == message  # --dry-run: the same checks
    fixed = table(tmp_path, "001,1,0,fine\n002,1000000,0\n003,0,0\n")
    assert len(prop.spice.import_data_table(fixed).written) == 3


@pytest.mark.parametrize("cell", ["①", "²", "１", "٣", "1²"])
def test_unicode_digits_are_refused_in_every_column(tmp_path, cell):
    prop = proposal(tmp_path)
    error = refused(prop, table(tmp_path, f"{cell},1,0\n002,{cell},0\n003,1,{cell}\n"), True)
    assert [(b.line, b.column) for b in error.bad] == [(2, "sample_name"), (3, "velocity"),
                                                      (4, "angle")]
    assert all("ASCII digits 0-9" in b.expected for b in error.bad)
    odd = cell[-1]
    assert f"found {cell!r}; expected integer >= 0 and <= 1000000, written in the ASCII " \
           f"digits 0-9 ({odd!r} is not one of them)" in str(error)


def test_line_numbers_are_the_ones_an_editor_shows(tmp_path):
    path = tmp_path / "data_table.csv"
    path.write_bytes(HEADER.encode() + b"001,1,0,page\x0cbreak\r\n002,x,0\r003,1,0\r\n")
    rows, _, bad = data_table.parse_data_table(data_table.read_data_table(str(path)), "t.csv")
    assert [(r.line, r.comment) for r in rows] == [(2, "page\x0cbreak"), (4, "")]
    assert [(b.line, b.column) for b in bad] == [(3, "velocity")]


def test_a_write_that_fails_midway_says_what_was_written(tmp_path, monkeypatch):
    prop = proposal(tmp_path)
    path = table(tmp_path, "001,1,0\n002,1,0\n003,1,0\n")
    update, calls = prop.spice.update, []

    def failing(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise SpiceError("disk full")
        return update(*args, **kwargs)

    monkeypatch.setattr(prop.spice, "update", failing)
    with pytest.raises(SpiceError, match=r"line 3 \(sample S002\): disk full; 1 of 3 rows were "
                                         r"written before it; importing the table again"):
        prop.spice.import_data_table(path)
    monkeypatch.undo()
    again = prop.spice.import_data_table(path)
    assert len(again.unchanged) == 1 and len(again.written) == 2


def test_row_and_size_limits_refuse_before_anything_is_written(tmp_path, monkeypatch):
    prop = proposal(tmp_path)
    monkeypatch.setattr(data_table, "MAX_TABLE_ROWS", 3)
    path = table(tmp_path, "001,1,0\n\n002,1,0\n003,1,0\n9,1,0\n")
    with pytest.raises(SpiceError, match=r"has more than 3 rows \(line 6\); the limit of a "
                                         r"data_table.csv"):
        prop.spice.import_data_table(path, dry_run=True)
    monkeypatch.setattr(data_table, "MAX_TABLE_BYTES", 40)
    with pytest.raises(SpiceError, match=r"is larger than 40 bytes \(the limit of a "
                                         r"data_table.csv"):
        prop.spice.import_data_table(table(tmp_path, "001,1,0\n"))
    assert len(prop.spice) == 0


def test_a_fifo_or_device_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "data_table.csv"
    os.mkfifo(fifo)
    code = textwrap.dedent("""
        import sys
        from eqegs_repo.params.data_table import read_data_table
        from spice import SpiceError
        for path in sys.argv[1:]:
            try:
                read_data_table(path)
            except SpiceError as exc:
                print(exc)
    """)
    done = subprocess.run([sys.executable, "-c", code, str(fifo), "/dev/zero"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=20, check=False)
    assert done.stdout.splitlines() == [f"data table {fifo} is not a regular file (found other)",
                                        "data table /dev/zero is not a regular file (found other)"]
