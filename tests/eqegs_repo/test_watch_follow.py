"""Watch follows growing samples (issue 22): cooked again after each growth with one history row
each, a rewrite during the read never gives a result, newest first, one cook per sample, and the
stop rule checked against a simulated measurement.

Watch is driven poll by poll with a fake clock (``_drive`` of test_watch.py): no test sleeps,
except the one that waits for a timed-out cook's thread.
"""
import os
import threading
import time

import numpy as np
import pandas as pd
import pytest

from eqegs_repo import BadInput
from eqegs_repo import batch
from eqegs_repo import watch as watching
from eqegs_repo.history import COLUMNS, LATER_COLUMNS, append_row, projected_exposure, read_file
from eqegs_repo.live_page import LivePage, shown_table
from eqegs_repo.measured import with_error
from eqegs_repo.simulate import synthetic
from tests.eqegs_repo.test_watch import _drive
from tests.helpers.cooktrees import PROPOSAL, image_params, repository, seed_spice, write_runs
from tests.helpers.treeutil import local_fs

TRAINS = (1000, 2000, 4000, 8000)
"""The growths of the measurement played: the errors of τ halve over them."""


def _growing_params():
    """A short run whose counts fit uint32 up to 8000 trains; flux and dark at 1000 trains."""
    return image_params(n_frames=256, dtype="uint32", trains_integrated=1000, flux=5000.0, dark=0.25)


@pytest.fixture(scope="module")
def measurement(tmp_path_factory):
    """S001 watched while it grows through :data:`TRAINS` (no background subtracted; every ISF
    point fitted). Returns ``(repo, rows, updates)``; ``updates``: (rows in the history passed,
    sample key, the new row) of each on_update call."""
    base = tmp_path_factory.mktemp("growing")
    params = _growing_params()
    write_runs(base, params, [7])
    repo = repository(base)
    seed_spice(repo[PROPOSAL], params, background=False, n_mc=200, isf_error_threshold=10.0)
    folder = f"{base}/{PROPOSAL}/S001"

    def grow(trains):
        return lambda: synthetic.grow_sample(folder, params, 7, trains)

    updates = []
    page = LivePage(f"{base}/live.html")  # the live view as eqegs watch --live-page gives it

    def on_update(history, sample, row):
        updates.append((len(history), sample.key, row))
        page(history, sample, row)

    with pytest.MonkeyPatch.context() as monkeypatch:
        rows, warned = _drive(monkeypatch, repo, 8, {2: grow(2000), 4: grow(4000), 6: grow(8000)},
                              samples="S001", steps=("e_spectrum_and_isf",), on_update=on_update)
    assert warned == []
    return repo, rows, updates


def test_a_growing_sample_is_cooked_again_after_each_growth_with_one_history_row_each(measurement):
    repo, rows, updates = measurement
    assert [r["status"] for r in rows] == ["ok"] * 4
    history = watching.read_history(repo)
    assert list(history.columns) == list(COLUMNS)
    assert list(history.n_trains) == list(TRAINS)
    assert np.allclose(history.exposure_s, [t * 256 / _growing_params().frame_rate_hz for t in TRAINS], rtol=1e-3)
    assert history.fingerprint.nunique() == 4 and (history.tau_err_ns / history.tau_ns).is_monotonic_decreasing
    assert [(n, key) for n, key, _ in updates] == [(1, "S001"), (2, "S001"), (3, "S001"), (4, "S001")]
    assert updates[-1][2]["n_trains"] == 8000 and updates[-1][2]["tau_ns"] == rows[-1]["tau_ns"]
    # each row names the q its result belongs to and the physics checks it failed, as the cook did
    assert list(history.q_weighted) == pytest.approx([r["q_weighted"] for r in rows]) and 11 < rows[-1]["q_weighted"] < 13
    assert list(history.checks.fillna("")) == [r["checks"] for r in rows]
    assert all(isinstance(r["checks"], str) for r in rows)


def test_a_history_file_written_before_q_and_checks_were_recorded_reads_and_grows(tmp_path):
    fs, path = local_fs(), str(tmp_path / "history.csv")
    old = [c for c in COLUMNS if c not in LATER_COLUMNS]
    pd.DataFrame([dict.fromkeys(old, 1.0) | {"proposal": "P", "sample": "S", "time": "2026-12-01T00:00:00",
                                             "status": "ok", "fingerprint": "a"}], columns=old).to_csv(path, index=False)
    table = read_file(fs, path)
    assert list(table.columns) == list(COLUMNS) and table.q_weighted.isna().all()
    assert shown_table(table).loc[0, "checks"] == ""
    row = dict.fromkeys(COLUMNS, 2.0) | {"proposal": "P", "sample": "S", "time": "2026-12-01T00:01:00",
                                        "status": "ok", "fingerprint": "b", "checks": "window 2.7 < 5"}
    grown = append_row(fs, path, row)
    assert list(pd.read_csv(path).columns) == list(COLUMNS) and len(grown) == 2
    latest = shown_table(read_file(fs, path)).iloc[0]
    assert latest["checks"] == "window 2.7 < 5" and latest["q (nm^-1)"] == "2.000"


def test_the_live_page_of_a_watch_shows_the_newest_row_after_the_last_growth(measurement):
    repo, rows, _ = measurement
    text = open(f"{repo[PROPOSAL]['S001'].path}/../../live.html", encoding="utf-8").read()
    assert with_error(rows[-1]["tau_ns"], rows[-1]["tau_error_ns"], "ns") in text  # the newest tau
    assert "8000" in text and text.count("<img") == 2  # its trains; tau against exposure and the ISF


def test_a_failing_on_update_is_one_warning_and_the_watch_goes_on(tmp_path, monkeypatch):
    params = _growing_params()
    write_runs(tmp_path, params, [3])
    repo = repository(tmp_path)
    seed_spice(repo[PROPOSAL], params, background=False, n_mc=50, isf_error_threshold=10.0)

    def broken(history, sample, row):
        raise OSError(28, "No space left on device")

    rows, warned = _drive(monkeypatch, repo, 6, {2: lambda: synthetic.grow_sample(
        f"{tmp_path}/{PROPOSAL}/S001", params, 3, 2000)}, samples="S001", steps=("e_spectrum_and_isf",),
        on_update=broken)
    assert [r["status"] for r in rows] == ["ok", "ok"]  # cooked again after the growth all the same
    assert len(watching.read_history(repo)) == 2
    assert any("on_update failed after the row of" in w and "No space left on device" in w for w in warned), warned


def test_the_stop_rule_projects_the_exposure_at_which_the_target_was_reached(measurement):
    repo, _, _ = measurement
    history = watching.read_history(repo, samples="S001")
    rel = (history.tau_err_ns / history.tau_ns).to_numpy()
    exposure = history.exposure_s.to_numpy(float)
    target = float(np.sqrt(rel[2] * rel[3]))  # reached between the third and the fourth growth
    k = int(np.argmax(rel <= target))
    reached = np.exp(np.interp(np.log(target), np.log(rel[[k, k - 1]]), np.log(exposure[[k, k - 1]])))
    early = projected_exposure(history.iloc[:2], target)  # after the second growth, 1/4 of the way
    assert not early.reached and early.projected_exposure_s > exposure[1]
    assert abs(early.projected_exposure_s / reached - 1) < 0.2, (early, reached)
    whole = projected_exposure(history, target)
    assert whole.reached and -0.7 < whole.slope < -0.3  # the 1/sqrt(exposure) rule, checked on the history
    stored = history.iloc[1]  # each row holds the projection made when it was written (target 0.05)
    assert stored.projected_exposure_s == pytest.approx(exposure[1] * (rel[1] / 0.05) ** 2, rel=1e-6)


def test_the_stop_rule_on_an_exact_history_and_its_bad_input():
    exposure = np.array([10.0, 40.0, 90.0])
    history = pd.DataFrame({"proposal": "P", "sample": "S", "exposure_s": exposure, "tau_ns": 100.0,
                            "tau_err_ns": 30.0 / np.sqrt(exposure)})
    projection = projected_exposure(history, 0.01)
    assert projection.slope == pytest.approx(-0.5) and projection.projected_exposure_s == pytest.approx(900.0)
    assert projection.remaining_s == pytest.approx(810.0) and "810 s more" in str(projection)
    for bad in (0, 1.5, True, "0.05"):
        with pytest.raises(BadInput, match="target_error must be a relative error of tau between 0 and 1"):
            projected_exposure(history, bad)
    with pytest.raises(BadInput, match="holds 2 samples"):
        projected_exposure(pd.concat([history, history.assign(sample="T")]), 0.05)


@pytest.fixture
def tree(tmp_path):
    params = image_params(n_frames=256)
    write_runs(tmp_path, params, [1, 2])
    repo = repository(tmp_path)
    seed_spice(repo[PROPOSAL], params, bg_n_points=10, n_mc=20)
    return tmp_path, repo, params


def test_a_rewrite_during_the_read_never_gives_a_result_nor_a_cache_entry(tree, monkeypatch):
    base, repo, params = tree
    folder, real, cooks = f"{base}/{PROPOSAL}/S001", batch._cook_row, []
    grown = synthetic.grown_params(params, params.trains_integrated + 200)
    sample = repo[PROPOSAL]["S001"]

    def read_then_rewritten(sample, *args):
        row = real(sample, *args)  # the data are read and cached under the files' signature ...
        if not cooks:              # ... then the files are rewritten in place before the cook ends
            synthetic.grow_sample(folder, params, 1, grown.trains_integrated, in_place=True)
        cooks.append(row)
        return row

    monkeypatch.setattr(batch, "_cook_row", read_then_rewritten)
    seen = {}
    rows, warned = _drive(monkeypatch, repo, 4, {2: lambda: seen.update(entries=watching._cache_entries(sample))},
                          samples="S001", steps=("q_integration",))
    assert len(cooks) == 2 and cooks[0]["status"] == "ok"         # the torn cook ran ...
    assert [r["status"] for r in rows] == ["ok"] and rows[0] is cooks[1]  # ... and was never reported
    assert seen["entries"] and not any(seen["entries"].values())   # its cache entries were removed at once
    assert warned == [] and sample.marker["trains_integrated"] == grown.trains_integrated
    again = sample.cook("q_integration", use_cache=False)          # the result is the rewritten files'
    assert rows[0]["spice_fingerprint"] == again.attrs["fingerprint"]
    assert rows[0]["centre_x"] == pytest.approx(again.attrs["centre_x"])
    assert len(watching.read_history(repo)) == 1


def test_the_sample_changed_last_is_cooked_first_and_only_changed_samples_again(tree, monkeypatch):
    base, repo, params = tree
    folder = f"{base}/{PROPOSAL}"

    def grow(*keys):  # one after the other: the last key is the newest
        def action():
            for key in keys:
                synthetic.grow_sample(f"{folder}/{key}", params, int(key[-1]), params.trains_integrated + 200)
                time.sleep(0.02)  # distinct modification times
        return action

    rows, _ = _drive(monkeypatch, repo, 6, {2: grow("S002"), 4: grow("S002", "S001")}, samples="S00[12]",
                     steps=("q_integration",))
    assert [r["sample"] for r in rows] == ["S002", "S001", "S002", "S001", "S002"]


def test_a_timed_out_cook_still_running_keeps_its_sample_from_a_second_cook(tree, monkeypatch):
    base, repo, _ = tree
    real, release, active, calls = batch._cook_row, threading.Event(), [0], []

    def slow_first(sample, *args):
        calls.append(active[0])  # cooks of the sample running when this one starts
        active[0] += 1
        try:
            if len(calls) == 1:
                release.wait(30)
            return real(sample, *args)
        finally:
            active[0] -= 1

    def change():
        with open(f"{base}/{PROPOSAL}/S001/train_integrated/.note", "w") as f:
            f.write("more")

    def let_go():
        assert len(calls) == 1  # settled since poll 4, but the first cook still runs: not started again
        release.set()
        deadline = time.monotonic() + 30
        while tracked["state"].busy.locked() and time.monotonic() < deadline:
            time.sleep(0.05)

    monkeypatch.setattr(batch, "_cook_row", slow_first)
    tracked = {}
    real_ready = watching._ready
    monkeypatch.setattr(watching, "_ready", lambda sample, state, *args: tracked.update(
        state=state) or real_ready(sample, state, *args))

    rows, warned = _drive(monkeypatch, repo, 6, {2: change, 5: let_go}, samples="S001", steps=("q_integration",),
                          timeout=0.2)
    assert [r["status"] for r in rows] == ["timed out", "up-to-date"] and calls == [0, 0]  # the first one cached it
    assert len(warned) == 1 and "gave 2025A1234/S001 up" in warned[0]


def test_the_samples_that_subtract_a_background_are_cooked_again_when_it_grows(tree, monkeypatch):
    base, repo, params = tree
    background = f"{base}/{PROPOSAL}/{synthetic.BACKGROUND_SAMPLE_ID}"

    def grow():
        synthetic.grow_sample(background, params, 10_000, params.trains_integrated + 200, background=True)

    rows, _ = _drive(monkeypatch, repo, 5, {2: grow}, samples="S00[12]", steps=("q_integration",))
    assert sorted(r["sample"] for r in rows) == ["S001", "S001", "S002", "S002"]
    assert all(r["status"] == "ok" for r in rows) and len({r["spice_fingerprint"] for r in rows}) == 4


def test_a_history_that_cannot_be_written_is_kept_in_memory_with_one_warning(tree, monkeypatch, tmp_path):
    base, repo, params = tree
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the history folder should be")
    updates = []
    rows, warned = _drive(monkeypatch, repo, 5, {2: lambda: synthetic.grow_sample(
        f"{base}/{PROPOSAL}/S001", params, 1, params.trains_integrated + 200)}, samples="S001",
        steps=("q_integration",), history_dir=str(blocked), on_update=lambda h, s, r: updates.append(len(h)))
    assert [r["status"] for r in rows] == ["ok", "ok"] and updates == [1, 2]
    assert len(warned) == 1 and f"cannot write the history file {blocked}/" in warned[0]
    assert "kept in memory only" in warned[0]


def test_the_files_of_any_raw_format_are_in_the_signature(tmp_path):
    """An HDF5 sample keeps its counts in train_integrated.h5, not in the raw folder: a rewrite of
    that file is a change watch follows."""
    pytest.importorskip("h5py")
    from eqegs_repo import Repository

    params = synthetic.preset_params("tiny", n_frames=8)
    synthetic.write_sample(tmp_path / "P" / "S001", params, seed=1, format="hdf5")
    sample = Repository(f"{tmp_path}/{{proposal}}/{{sample}}", spice_url="memory://", cache_url=False)["P"]["S001"]
    before = watching.file_signature(sample)
    assert any(path.endswith("/train_integrated.h5") for path, *_ in before)
    h5 = tmp_path / "P" / "S001" / "train_integrated.h5"
    stat = h5.stat()
    os.utime(h5, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # rewritten in place, same size
    assert watching.file_signature(sample) != before
