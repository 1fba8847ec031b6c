"""Watch mode (issue 20 M1): samples whose raw files arrive after the marker, samples that keep
failing or never settle, and catching up after a restart.

Watch is driven poll by poll: its ``stop.wait`` is replaced by a function that moves watch's
clock on by one interval and changes the tree between two polls, so no test sleeps.
"""
import os
import shutil
import threading
import warnings

import pytest

from eqegs_repo import Repository
from eqegs_repo import watch as watching
from eqegs_repo.errors import WatchWarning
from tests.helpers.cooktrees import PROPOSAL, image_params, repository, seed_spice, write_runs

STEPS = ("q_integration",)


@pytest.fixture
def tree(tmp_path):
    """Samples S001-S003 and their background; a repository with a cache and seeded spice."""
    params = image_params(n_frames=256)
    write_runs(tmp_path, params, [1, 2, 3])
    repo = repository(tmp_path)
    seed_spice(repo[PROPOSAL], params, bg_n_points=10, n_mc=20)
    return tmp_path, repo


def _drive(monkeypatch, repo, polls, between=None, **kwargs):
    """``watch(repo, **kwargs)`` for ``polls`` polls; ``between[k]()`` changes the tree after
    poll k (1-based). Returns ``(rows, WatchWarning messages)``."""
    clock = [0.0]
    monkeypatch.setattr(watching, "_clock", lambda: clock[0])
    stop, done = threading.Event(), []

    def wait(seconds):
        clock[0] += seconds
        done.append(seconds)
        action = (between or {}).get(len(done))
        if action is not None:
            action()

    monkeypatch.setattr(stop, "wait", wait)
    kwargs.setdefault("steps", STEPS)
    kwargs.setdefault("changes", "poll")  # the fake clock moves in stop.wait: no file events
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = watching.watch(repo, stop=stop, max_polls=polls, interval=0.05, **kwargs)
    warned = [str(w.message) for w in caught if w.category is WatchWarning]
    return rows, warned


def _take_away(base, key):
    """Move sample ``key`` out of the tree; returns where it went."""
    aside = f"{base}/aside-{key}"
    shutil.move(f"{base}/{PROPOSAL}/{key}", aside)
    return aside


def test_raw_files_arriving_after_the_marker_are_cooked_once_they_settle(tree, monkeypatch):
    base, repo = tree
    aside, folder = _take_away(base, "S002"), f"{base}/{PROPOSAL}/S002"
    raw = sorted(os.listdir(f"{aside}/train_integrated"))

    def marker_first():
        os.makedirs(folder)
        shutil.copy2(f"{aside}/train_integrated.json", folder)

    def partial_copy():  # as rsync: a hidden partial file, then the first file in place
        os.makedirs(f"{folder}/train_integrated")
        shutil.copy2(f"{aside}/train_integrated/{raw[0]}", f"{folder}/train_integrated/.{raw[0]}.Xa1b2")

    def the_rest():
        os.rename(f"{folder}/train_integrated/.{raw[0]}.Xa1b2", f"{folder}/train_integrated/{raw[0]}")
        for name in raw[1:]:
            shutil.copy2(f"{aside}/train_integrated/{name}", f"{folder}/train_integrated/{name}")

    rows, warned = _drive(monkeypatch, repo, 9, {1: marker_first, 3: partial_copy, 4: the_rest}, samples="S002")
    # poll 2: the marker is new; poll 3: settled, cooked, fails (raw files missing); polls 4-5:
    # files change; poll 6: settled again, cooked
    assert [r["status"] for r in rows] == ["failed", "ok"], rows
    assert "train_integrated" in rows[0]["error"] and "try 1 of 3" in rows[0]["error"]
    assert warned == []


def test_a_sample_that_keeps_failing_is_given_up_once_and_tried_again_when_its_files_change(tree, monkeypatch):
    base, repo = tree
    sensor = f"{base}/{PROPOSAL}/S002/train_integrated/sensor_1.npy"
    whole = open(sensor, "rb").read()
    with open(sensor, "wb") as f:
        f.write(whole[:-100])

    def repair():
        with open(sensor, "wb") as f:
            f.write(whole)

    rows, warned = _drive(monkeypatch, repo, 20, {15: repair}, samples="S002", retries=2)
    statuses = [r["status"] for r in rows]
    assert statuses == ["failed", "failed", "failed", "ok"], rows  # 3 tries, given up, repaired: cooked
    assert "try 2 of 3; tried again in 0.2 s" in rows[1]["error"]
    assert len(warned) == 1 and "gave 2025A1234/S002 up after 3 failed cook(s)" in warned[0]
    assert "sensor_1.npy" in warned[0] and "tried again when its files change" in warned[0]


def test_a_sample_whose_files_never_settle_is_named_once_and_cooked_when_they_do(tree, monkeypatch):
    base, repo = tree
    monkeypatch.setattr(watching, "UNSETTLED_WARNING_S", 0.2)
    growing = f"{base}/{PROPOSAL}/S002/train_integrated/.sensor_9.npy.part"

    def grow():
        with open(growing, "ab") as f:
            f.write(b"x" * 10)

    between = {k: grow for k in range(1, 12)}
    between[12] = lambda: os.remove(growing)
    rows, warned = _drive(monkeypatch, repo, 16, between, samples="S002")
    assert [r["status"] for r in rows] == ["ok"]   # only once the files stopped changing
    assert len(warned) == 1 and "the files of 2025A1234/S002 still change after" in warned[0]


def test_a_restarted_watch_cooks_exactly_what_is_not_cooked_yet(tree, monkeypatch):
    base, repo = tree
    repo[PROPOSAL]["S001"].cook("q_integration")
    rows, warned = _drive(monkeypatch, repo, 3, samples="S00[1-9]")
    assert [(r["sample"], r["status"]) for r in rows] == [("S003", "ok"), ("S002", "ok")]  # S001 was cooked; newest first
    rows, _ = _drive(monkeypatch, repo, 3, samples="S00[1-9]")
    assert rows == []                                      # a restart: nothing left to do
    rows, _ = _drive(monkeypatch, repo, 3, samples="S00[1-9]", existing=True)
    assert [(r["sample"], r["status"]) for r in rows] == [(k, "up-to-date") for k in ("S003", "S002", "S001")]
    rows, _ = _drive(monkeypatch, repo, 3, samples="S00[1-9]", export=True)
    assert sorted(r["sample"] for r in rows) == ["S001", "S002", "S003"]  # cooked, not exported yet
    assert os.path.isdir(f"{base}/{PROPOSAL}/S003/q_integration")
    rows, _ = _drive(monkeypatch, repo, 3, samples="S00[1-9]", export=True)
    assert rows == [] and warned == []
    uncached = Repository(repo.url, spice_url=repo.spice_url, cache_url=False)
    rows, warned = _drive(monkeypatch, uncached, 3, samples="S00[1-9]")
    assert rows == [] and len(warned) == 1 and "no result cache" in warned[0] and "existing=True" in warned[0]
    assert "until their files change" in warned[0]


def test_retries_that_are_no_count_are_refused_before_the_first_poll(tree, capsys):
    from eqegs_repo import BadInput
    from eqegs_repo.cli.main import main

    base, repo = tree
    for retries in (-1, 1.5, True, None):
        with pytest.raises(BadInput, match=r"retries must be a whole number >= 0, got"):
            watching.watch(repo, retries=retries, max_polls=1)
    assert main(["watch", repo.url, "--spice-url", repo.spice_url, "--retries", "-1"]) == 1
    err = capsys.readouterr().err
    assert err == "eqegs: error: retries must be a whole number >= 0, got -1\n"  # before "watching ..."
