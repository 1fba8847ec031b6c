"""Rows of a large proposal's table kept between listings, never shown stale (issue 20 row L8;
eqegs_repo/listing_cache.py). Each test lowers the size from which rows are kept to 0 and the
settling time to 0 s, and counts the rows computed."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from eqegs_repo import Repository, listing_cache, snapshot
from eqegs_repo.sample import Sample
from tests.helpers.treeutil import local_fs, write_tree

KEYS = ["S1", "S2", "S3", "S4"]


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.setattr(listing_cache, "MIN_SAMPLES", 0)
    monkeypatch.setattr(listing_cache, "SETTLE_S", 0.0)
    write_tree(local_fs(), str(tmp_path / "t"), {"P1": KEYS})
    computed = []
    original = Sample._summary
    monkeypatch.setattr(Sample, "_summary", lambda self, check: computed.append(self.key) or original(self, check))
    return tmp_path, computed


def _proposal(tmp_path):
    return Repository(f"{tmp_path}/t/{{proposal}}/{{sample}}", cache_url=str(tmp_path / "cache"))["P1"]


def _fresh_table(tmp_path, monkeypatch):
    """The table computed with no kept row (the reference)."""
    with monkeypatch.context() as m:
        m.setattr(listing_cache, "MIN_SAMPLES", 10**9)
        return _proposal(tmp_path).table()


def _listed(tmp_path, computed):
    """(table, keys whose rows were computed) of a new listing, as a new process would make."""
    time.sleep(0.02)  # the next change falls in another clock tick than the listing before
    computed.clear()
    table = _proposal(tmp_path).table()
    return table, list(computed)


def test_kept_rows_are_shown_again_as_computed(tree, monkeypatch):
    tmp_path, computed = tree
    first, done = _listed(tmp_path, computed)
    assert done == KEYS
    again, done = _listed(tmp_path, computed)
    assert done == []  # every row kept
    pd.testing.assert_frame_equal(again, first)
    pd.testing.assert_frame_equal(again, _fresh_table(tmp_path, monkeypatch))
    assert repr(again) == repr(first) and again._repr_html_() == first._repr_html_()


def test_a_changed_raw_file_marker_or_spice_record_changes_the_row_at_once(tree, monkeypatch):
    tmp_path, computed = tree
    _listed(tmp_path, computed)
    sensor = tmp_path / "t" / "P1" / "S2" / "train_integrated" / "sensor_0.npy"
    data = sensor.read_bytes()
    assert b"'<u4'" in data
    with open(sensor, "r+b") as f:  # in place: same size, same inode, another dtype
        f.write(data.replace(b"'<u4'", b"'<i4'", 1))
    assert sensor.stat().st_size == len(data)
    table, done = _listed(tmp_path, computed)
    assert done == ["S2"] and table.set_index("key").loc["S2", "dtype"] == "int64"  # the stack of uint32 and int32 sensors
    pd.testing.assert_frame_equal(table, _fresh_table(tmp_path, monkeypatch))

    marker = tmp_path / "t" / "P1" / "S3" / "train_integrated.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "exposure_s": 12.5}))
    table, done = _listed(tmp_path, computed)
    assert done == ["S3"] and table.set_index("key").loc["S3", "exposure_s"] == 12.5

    _proposal(tmp_path).spice.seed("conditions", anchor="S4", temperature=250.0)
    table, done = _listed(tmp_path, computed)
    assert done == KEYS  # the spice stores changed: every row again
    assert table.set_index("key").loc["S4", "temperature_K"] == 250.0
    pd.testing.assert_frame_equal(table, _fresh_table(tmp_path, monkeypatch))


def test_a_new_cached_result_or_a_new_background_user_changes_the_rows_at_once(tree, monkeypatch):
    tmp_path, computed = tree
    _proposal(tmp_path).spice.seed("q_integration", bg_sample_id="S1")
    table, _ = _listed(tmp_path, computed)
    assert table.set_index("key").loc["S1", "background_for"] == "S2,S3,S4"
    assert table.set_index("key").loc["S2", "cooked"] == ""
    _proposal(tmp_path)["S2"].cook("reconstruction")
    table, done = _listed(tmp_path, computed)
    assert done == ["S2"] and table.set_index("key").loc["S2", "cooked"] == "reconstruction"
    _, done = _listed(tmp_path, computed)
    assert done == []
    (entry,) = (tmp_path / "cache").glob("P1__S2__*/reconstruction/*.npz")
    entry.unlink()  # its step folder stays
    table, done = _listed(tmp_path, computed)
    assert done == ["S2"] and table.set_index("key").loc["S2", "cooked"] == ""

    shutil.copytree(tmp_path / "t" / "P1" / "S4", tmp_path / "t" / "P1" / "S5")
    table, done = _listed(tmp_path, computed)
    assert done == ["S1", "S5"]  # the background run's row names its users; S5 is new
    assert table.set_index("key").loc["S1", "background_for"] == "S2,S3,S4,S5"
    pd.testing.assert_frame_equal(table, _fresh_table(tmp_path, monkeypatch))

    shutil.rmtree(tmp_path / "t" / "P1" / "S1" / "train_integrated")  # the background's raw files
    (tmp_path / "t" / "P1" / "S1" / "train_integrated").mkdir()
    table, done = _listed(tmp_path, computed)
    assert done == ["S1", "S2", "S3", "S4", "S5"]  # their q fingerprints read the background's files
    pd.testing.assert_frame_equal(table, _fresh_table(tmp_path, monkeypatch))


def test_recently_changed_files_keep_their_rows_out(tree, monkeypatch):
    tmp_path, computed = tree
    monkeypatch.setattr(listing_cache, "SETTLE_S", 3600.0)
    _listed(tmp_path, computed)
    _, done = _listed(tmp_path, computed)
    assert done == KEYS  # written within the hour: a change in the same clock tick could hide


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xff\xfe\x00", b"[1, 2]", b'{"format": 1, "state": "x", "rows": {}}',
                                     b'{"format": 99, "rows": {"S1": {"row": {"key": "S1"}}}}'])
def test_a_corrupt_or_foreign_cache_file_changes_nothing(tree, monkeypatch, content):
    tmp_path, computed = tree
    first, _ = _listed(tmp_path, computed)
    path = listing_cache.cache_file(_proposal(tmp_path), True)
    assert os.path.isfile(path)
    with open(path, "wb") as f:
        f.write(content)
    table, done = _listed(tmp_path, computed)
    assert done == KEYS
    pd.testing.assert_frame_equal(table, first)
    _, done = _listed(tmp_path, computed)
    assert done == []  # written again, whole


def test_a_tampered_row_shape_is_computed_again(tree):
    tmp_path, computed = tree
    first, _ = _listed(tmp_path, computed)
    path = listing_cache.cache_file(_proposal(tmp_path), True)
    kept = json.loads(open(path, encoding="utf-8").read())
    kept["rows"]["S1"]["own"] = "not a manifest"
    kept["rows"]["S2"]["row"]["key"] = "S3"
    kept["rows"]["S3"]["cache"] = [["..", "x"], "0"]
    open(path, "w", encoding="utf-8").write(json.dumps(kept))
    table, done = _listed(tmp_path, computed)
    assert done == ["S1", "S2", "S3"]
    pd.testing.assert_frame_equal(table, first)


def test_a_fifo_in_place_of_the_cache_file_is_ignored_without_waiting(tmp_path):
    write_tree(local_fs(), str(tmp_path / "t"), {"P1": KEYS})
    script = textwrap.dedent(f"""
        import os
        from eqegs_repo import Repository, listing_cache
        listing_cache.MIN_SAMPLES = 0
        prop = Repository({str(tmp_path / "t")!r} + "/{{proposal}}/{{sample}}", cache_url=False)["P1"]
        path = listing_cache.cache_file(prop, True)
        os.makedirs(os.path.dirname(path))
        os.mkfifo(path)
        print(list(prop.table()["key"]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "user-cache"),
                               "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(KEYS)


def test_small_proposals_and_memory_spice_keep_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    write_tree(local_fs(), str(tmp_path / "t"), {"P1": KEYS})
    _proposal(tmp_path).table()  # under MIN_SAMPLES
    monkeypatch.setattr(listing_cache, "MIN_SAMPLES", 0)
    Repository(f"{tmp_path}/t/{{proposal}}/{{sample}}", spice_url="memory://")["P1"].table()
    assert not (tmp_path / "user-cache").exists()


def test_a_value_remembered_in_a_listing_passes_its_notes_to_every_caller():
    with snapshot.scope():
        with snapshot.recording() as first:
            assert snapshot.remembered("k", lambda: snapshot.note("calibration folder /c") or 1) == 1
        with snapshot.recording() as second:
            assert snapshot.remembered("k", lambda: 2) == 1
    assert first == second == ["calibration folder /c"]
    with snapshot.recording() as outer:
        with snapshot.recording() as inner:
            snapshot.note("x")
    assert inner == outer == ["x"]


def test_a_row_that_hashed_a_calibration_folder_is_not_kept(tree, monkeypatch):
    from eqegs_repo.cooking import calibration

    tmp_path, computed = tree
    original = calibration.folder_fingerprint
    monkeypatch.setattr(calibration, "folder_fingerprint",
                        lambda params, trusted=(): snapshot.note("calibration folder /c") or original(params, trusted))
    _proposal(tmp_path)["S2"].cook("reconstruction")  # S2's e_spectrum fingerprint is checked
    _listed(tmp_path, computed)
    _, done = _listed(tmp_path, computed)
    assert "S2" in done


def test_the_text_view_formats_once_and_prints_what_formatting_per_long_column_prints(monkeypatch):
    from eqegs_repo import display

    rng = np.random.default_rng(3)
    words = ["", "x", "a b", "S0002,S0003,S0004", "é" * 30, "raw file missing in /data/S1: " + "y" * 90]
    for rows in (1, 3, 40):
        frame = pd.DataFrame({"key": [f"S{i}" for i in range(rows)], "frames": rng.integers(1, 10**6, rows),
                              "exposure_s": rng.choice([1.5, 22.25, np.nan], rows),
                              "background": rng.choice(words, rows), "problem": rng.choice(words, rows)})
        fast = {width: display.text_view(frame, width=width) for width in (30, 80, 120)}
        with monkeypatch.context() as m:
            m.setattr(display, "_with_long_text_last", lambda *args: None)
            assert fast == {width: display.text_view(frame, width=width) for width in (30, 80, 120)}


def test_eqegs_ls_of_kept_rows_imports_no_xarray_nor_scipy(tmp_path):
    write_tree(local_fs(), str(tmp_path / "t"), {"P1": KEYS})
    script = textwrap.dedent(f"""
        import sys
        from eqegs_repo import listing_cache
        from eqegs_repo.cli.main import main
        listing_cache.MIN_SAMPLES, listing_cache.SETTLE_S = 0, 0.0
        assert main(["ls", {str(tmp_path / "t")!r}, "P1", "--cache-url", {str(tmp_path / "cache")!r}]) in (0, None)
        print("xarray" in sys.modules, "scipy" in sys.modules)
    """)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "user-cache"), "PYTHONPATH": os.pathsep.join(sys.path)}
    first, kept = (subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                                  check=False, env=env) for _ in range(2))
    assert first.returncode == kept.returncode == 0, first.stderr + kept.stderr
    assert first.stdout.splitlines()[:-1] == kept.stdout.splitlines()[:-1] and "S4" in kept.stdout
    assert kept.stdout.split()[-2:] == ["False", "False"], kept.stdout
