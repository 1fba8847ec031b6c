"""Views that fit 120 columns: the sample table, the grouped spice view, sample.info()."""
import json

import fsspec
import pandas as pd
import pytest

from eqegs_repo import Repository
from eqegs_repo.display import SampleInfo, SampleTable, step_letters
from tests.helpers.treeutil import write_sample, write_tree


@pytest.fixture
def repo(tmp_path):
    fs = fsspec.filesystem("file")
    base = tmp_path / "a-rather-long-folder-name-for-the-tree" / "EQEGS"
    write_tree(fs, str(base), {"2025A1234": ["S001", "S002"]})
    broken = base / "2025A1234" / "S003"
    write_sample(fs, str(broken), seed=3)
    sensor = broken / "train_integrated" / "sensor_2.npy"
    sensor.write_bytes(sensor.read_bytes()[:-40])                 # a long "truncated" problem
    return Repository(f"{base}/{{proposal}}/{{sample}}", cache_url=str(tmp_path / "cache"))


def test_step_letters_show_fresh_stale_and_missing_steps():
    assert step_letters("reconstruction,q_integration", "e_spectrum_and_isf") == "RQe"
    assert step_letters([], ["reconstruction"]) == "r.."
    assert step_letters("", "") == "..."


def test_the_sample_table_prints_compactly_and_keeps_every_column(repo):
    table = repo.p2025A1234.table()
    assert isinstance(table, SampleTable)
    text = repr(table)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 120
    header = lines[0].split()
    assert header == ["key", "frames", "sensors", "shape", "dtype", "trains", "exposure_s", "spice",
                      "problem"]                   # empty columns, handle (= key) and steps dropped
    assert lines[3].startswith("S003") and lines[3].endswith("…") and "truncated" not in lines[3][-5:]
    full = table.to_string()                       # programs and to_string() see every column
    assert "e_spectrum_and_isf" in full and "bytes" in table.set_index("key").loc["S003", "problem"]
    assert type(table[["key", "frames"]]) is pd.DataFrame and type(table.set_index("key")) is pd.DataFrame
    html = repo.p2025A1234._repr_html_()
    assert ">status<" in html and ">broken<" in html and ">e_spectrum_and_isf<" not in html


def test_cooked_steps_show_as_letters(repo, monkeypatch):
    from eqegs_repo import sample as sample_module

    status = {"reconstruction": "fresh", "q_integration": "stale", "e_spectrum_and_isf": ""}
    monkeypatch.setattr(sample_module.Sample, "cache_status", lambda self, **o: dict(status))
    lines = repr(repo.p2025A1234.refresh().table()).splitlines()
    assert lines[0].split()[-2:] == ["cooked", "problem"]
    row = lines[1].split()
    assert row[0] == "S001" and row[-1] == "Rq."
    assert lines[-1].startswith("on_disk / cooked: R reconstruction")


def test_the_spice_view_is_grouped_by_type_and_collapsible(repo):
    prop = repo.p2025A1234
    prop.spice.seed("q_range", q_min=10.0, q_max=12.0)
    prop.spice.seed("q_integration", anchor="S002", bg_sample_id="S001")
    view = prop.S002.spice
    lines = repr(view).splitlines()
    assert max(map(len, lines)) <= 120
    roi = [line for line in lines if line.startswith("roi ")]
    assert len(roi) == 1 and "defaults: x0 null" in roi[0]          # all defaults: one line
    q_range = lines.index(next(line for line in lines if line.startswith("q_range ")))
    assert "proposal (default) r1" in lines[q_range]
    assert lines[q_range + 1].split()[:3] == ["q_min", "10", "nm^-1"]
    q_int = next(line for line in lines if line.startswith("q_integration "))
    assert "proposal S002 r1" in q_int and "default(s)" in q_int     # mixed: record + defaults
    html = view._repr_html_()
    assert html.count("<details") == len(view.keys())
    assert "<details open><summary><b>q_range</b>" in html and "<details><summary><b>roi</b>" in html
    assert view.text(types=["q_range"]).count("\n") == 3              # title, group, two fields


def test_info_reads_well_and_still_gives_the_data(repo):
    info = repo.p2025A1234.S001.info()
    assert isinstance(info, SampleInfo) and info["n_frames"] == 6 and "sensor_0.npy" in info["files"]
    assert dict(info)["raw_bytes"] == info["raw_bytes"] and json.loads(json.dumps(info.to_dict()))
    text = repr(info)
    assert text.startswith("<SampleInfo 2025A1234/S001>") and max(map(len, text.splitlines())) <= 120
    assert "  n_frames " in text and "MB)" in text
    assert "<table>" in info._repr_html_()
