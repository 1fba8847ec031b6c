"""Time limits, poll intervals and worker counts of reanalysis and watch are checked before any
work starts (issue 20, L4 and L5; docs/robustness.md, docs/reanalysis.md)."""
import math
import os
import subprocess
import sys
import threading

import pytest

from eqegs_repo import BadInput, Repository, batch
from eqegs_repo import watch as watching
from eqegs_repo.cli.main import main
from tests.helpers.treeutil import local_fs, write_tree

NOT_TIMES = [math.inf, math.nan, -math.inf, 1e300, 10**400, threading.TIMEOUT_MAX * 2]


class ClusterStarted(Exception):
    """Raised instead of starting a local cluster (the arguments were accepted)."""


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """Two samples with default spice (cooks fail on their empty images); a local cluster is
    never started: ``batch.local_cluster`` raises :class:`ClusterStarted` with its arguments."""
    write_tree(local_fs(), str(tmp_path), {"2025A1234": ["S001", "S002"]})

    def refuse(distributed, workers, dashboard):
        raise ClusterStarted(workers)

    monkeypatch.setattr(batch, "local_cluster", refuse)
    return Repository(f"{tmp_path}/{{proposal}}/{{sample}}", spice_url="memory://", cache_url=False)


# --- L4: a time limit that is no number of seconds -------------------------------------------
@pytest.mark.parametrize("timeout", NOT_TIMES)
def test_an_infinite_or_too_long_timeout_is_refused_before_any_sample(repo, timeout):
    sample = repo["2025A1234"]["S001"]
    with pytest.raises(BadInput, match=r"timeout must be a number of seconds > 0 and at most 9\.2\d*e\+09"):
        batch.cook_sample(sample, timeout=timeout)  # once: OverflowError from the thread's join
    with pytest.raises(BadInput, match="timeout must be"):
        batch.reanalyze(repo, timeout=timeout, progress=False)  # once: a cluster, every row OverflowError
    with pytest.raises(BadInput, match="timeout must be"):
        watching.watch(repo, timeout=timeout, existing=True, interval=0.05, max_polls=1)
    assert batch.cook_sample(sample, timeout=threading.TIMEOUT_MAX)["status"] == "failed"  # the longest wait is fine


def test_the_command_line_refuses_timeout_inf_in_one_line(repo, tmp_path, capsys):
    for command in ("reanalyze", "watch"):
        assert main([command, str(tmp_path), "--spice-url", "memory://", "--timeout", "inf"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("eqegs: error: timeout must be a number of seconds > 0") and "got inf" in err
        assert "Traceback" not in err and "watching" not in err


# --- L5: a poll interval that busy-loops or breaks after the first poll ---------------------
@pytest.mark.parametrize("interval", [0, 0.0, 0.01, -1, math.nan, math.inf, 1e300, "5", True, None])
def test_watch_refuses_a_bad_interval_before_the_first_poll(repo, monkeypatch, interval):
    polls = []
    monkeypatch.setattr(repo, "refresh", lambda: polls.append(1))
    with pytest.raises(BadInput, match=r"interval must be a number of seconds from 0\.05 to 9\.2\d*e\+09"):
        watching.watch(repo, interval=interval, existing=True, max_polls=3)  # bounded even when unchecked
    assert polls == []  # refused before the tree is listed


def test_watch_keeps_to_its_interval(repo, monkeypatch):
    waits = []
    stop = threading.Event()
    monkeypatch.setattr(stop, "wait", waits.append)
    rows = watching.watch(repo, interval=batch.MIN_INTERVAL, existing=True, stop=stop, max_polls=3,
                          retries=0, changes="poll")  # each failing cook is given up at once: one row per sample
    assert sorted(r["sample"] for r in rows) == ["S001", "S002"] and waits == [0.05, 0.05]


def test_watch_interval_zero_on_the_command_line_is_an_error_not_a_busy_loop(repo, tmp_path):
    done = subprocess.run([sys.executable, "-m", "eqegs_repo", "watch", str(tmp_path), "--spice-url", "memory://",
                           "--interval", "0"], capture_output=True, text=True, timeout=60,  # a busy loop never ends
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 1
    assert done.stderr == ("eqegs: error: interval must be a number of seconds from 0.05 to "
                           f"{threading.TIMEOUT_MAX:g} (the longest wait of this platform), got 0.0\n")


# --- L5: more worker processes than the machine can run --------------------------------------
def test_workers_above_four_per_core_are_refused_naming_the_bound(repo, tmp_path, capsys):
    cores = os.cpu_count() or 1
    assert batch.max_workers() == 4 * cores
    for workers in (batch.max_workers() + 1, 1000):  # once: a cluster of 1000 worker processes
        with pytest.raises(BadInput, match=rf"workers must be a whole number of processes >= 1 and at most "
                                           rf"{4 * cores} \(4 per core; this machine has {cores}\)"):
            batch.reanalyze(repo, workers=workers, progress=False)
    with pytest.raises(ClusterStarted, match=rf"^{4 * cores}$"):  # the bound itself is allowed
        batch.reanalyze(repo, workers=batch.max_workers(), progress=False)
    assert main(["reanalyze", str(tmp_path), "--spice-url", "memory://", "--workers", "1000"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("eqegs: error: workers must be a whole number of processes >= 1 and at most")
    assert "got 1000" in err
