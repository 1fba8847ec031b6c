"""Listings that one odd folder or file cannot break (issue 12 rows 5-8; docs/robustness.md)."""
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import pytest

from eqegs_repo import BadInput, BadSample, Repository, batch
from eqegs_repo.cli.main import main
from eqegs_repo.sample import Sample
from spice import SpiceError
from tests.helpers.treeutil import SpyMemoryFS, local_fs, write_tree

ROOT_ARGS = "--spice-url", "memory://"


def _local_tree(tmp_path, proposals):
    write_tree(local_fs(), str(tmp_path), proposals)
    return Repository(f"{tmp_path}/{{proposal}}/{{sample}}", spice_url="memory://", cache_url=False)


# --- row 5: folder names that access refuses ------------------------------------------------
def test_folders_named_like_traversal_are_left_out_with_a_warning(tmp_path, capsys):
    repo = _local_tree(tmp_path, {"2025A1234": ["S001", "S..1", "S2"], "P..2": ["S001"]})
    with pytest.warns(UserWarning, match=r"P\.\.2 is not listed: its proposal key 'P\.\.2' is not usable"):
        assert repo.keys() == ["2025A1234"]
    prop = repo["2025A1234"]
    with pytest.warns(UserWarning, match=r"2025A1234/S\.\.1 is not listed"):
        assert prop.keys() == ["S001", "S2"]
    assert list(prop.table(check=False)["problem"]) == ["", ""]
    assert len(repo.table()) == 1 and "S001" in prop._repr_html_() and "2025A1234" in repo._repr_html_()
    assert [s.key for s in batch.select_samples(repo)] == ["S001", "S2"]  # what reanalyze cooks
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["ls", str(tmp_path), *ROOT_ARGS]) == 0
        assert main(["ls", str(tmp_path), "2025A1234", *ROOT_ARGS]) == 0
    out, err = capsys.readouterr()
    assert "S2" in out and "P..2" not in out and "S..1" not in out
    assert f"eqegs: warning: {tmp_path}/P..2 is not listed: its proposal key 'P..2' is not usable" in err
    assert all(line.startswith("eqegs: warning: ") for line in err.splitlines())


# --- row 6: a deeply nested marker -----------------------------------------------------------
def test_a_deeply_nested_marker_is_one_broken_sample(tmp_path, capsys):
    repo = _local_tree(tmp_path, {"2025A1234": ["S001", "S2"]})
    nested = tmp_path / "2025A1234" / "S2" / "train_integrated.json"
    nested.write_text("[" * 200_000 + "]" * 200_000)
    table = repo["2025A1234"].table(check=False).set_index("key")
    assert table.loc["S001", "problem"] == ""
    assert table.loc["S2", "problem"] == f"{nested}: JSON nested too deeply to read; expected a flat JSON object"
    with pytest.raises(BadSample, match="nested too deeply"):
        repo["2025A1234"]["S2"].marker
    assert main(["ls", str(tmp_path), "2025A1234", *ROOT_ARGS]) == 0
    assert "nested too deeply" in capsys.readouterr().out
    info = tmp_path / "2025A1234" / "S001" / "reconstruction" / "dl" / "info" / "info.json"
    info.parent.mkdir(parents=True)
    info.write_text("{\"a\": " * 100_000 + "1" + "}" * 100_000)
    (info.parents[2] / "reconstruction.csv").write_text("1,2\n3,4\n")
    with pytest.raises(BadSample, match=r"info.json: JSON nested too deeply"):
        repo["2025A1234"]["S001"].results["reconstruction"]["main"]


# --- row 7: unreadable folders and links -----------------------------------------------------
def test_an_unreadable_spice_folder_is_named_where_it_matters(tmp_path, monkeypatch, capsys):
    import spice.store

    repo = Repository(f"{tmp_path}/{{proposal}}/{{sample}}", cache_url=False)  # spice in the tree
    write_tree(local_fs(), str(tmp_path), {"2025A1234": ["S001", "S2"]})
    real = os.scandir

    def refusing(path="."):
        if str(path).endswith(f"2025A1234{os.sep}.spice"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(spice.store.os, "scandir", refusing)
    folder = f"{tmp_path}/2025A1234/.spice"
    table = repo["2025A1234"].table(check=False)
    assert list(table["problem"]) == [f"spice: cannot list the spice records in {folder}: Permission denied"] * 2
    with pytest.raises(SpiceError, match=f"cannot list the spice records in {folder}: Permission denied"):
        repo["2025A1234"]["S001"].spice.status
    with pytest.raises(SpiceError, match=f"cannot list the spice records in {folder}: Permission denied"):
        repo["2025A1234"]["S001"].cook("reconstruction")
    row = batch.cook_sample(repo["2025A1234"]["S001"], steps=("reconstruction",))
    assert row["status"] == "failed" and f"cannot list the spice records in {folder}: Permission denied" in row["error"]
    assert main(["ls", str(tmp_path), "2025A1234"]) == 0
    assert main(["spice", "show", str(tmp_path), "2025A1234", "S001"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot list the spice records in {folder}: Permission denied" in err


def test_an_unreadable_sample_folder_is_listed_as_broken(memroot):
    fs, root = memroot
    write_tree(fs, root, {"2025A1234": ["S001", "S2", "S3"]})
    SpyMemoryFS.unreadable = {f"{root}/2025A1234/S2"}
    try:
        prop = Repository(f"spymem://{root}/{{proposal}}/{{sample}}", spice_url="memory://", cache_url=False)["2025A1234"]
        assert prop.keys() == ["S001", "S2", "S3"]
        table = prop.table().set_index("key")
        assert table.loc["S2", "problem"] == f"{root}/2025A1234/S2/train_integrated.json: cannot be read (Permission denied)"
        assert table.loc["S001", "problem"] == table.loc["S3", "problem"] == ""
    finally:
        SpyMemoryFS.unreadable = set()


def test_linked_proposals_and_samples_are_followed_and_dangling_links_shown(tmp_path):
    data = tmp_path / "data"
    write_tree(local_fs(), str(data), {"2025A1234": ["S001"]})
    root = tmp_path / "tree"
    (root / "2025B0001").mkdir(parents=True)
    os.symlink(data / "2025A1234", root / "2025A1234")                          # a linked proposal
    os.symlink(data / "2025A1234" / "S001", root / "2025B0001" / "S7")          # a linked sample
    os.symlink(tmp_path / "gone", root / "2025B0001" / "S8")                    # a dangling link
    os.symlink(data / "2025A1234" / "S001" / "train_integrated.json", root / "2025B0001" / "S9")  # a file
    repo = Repository(f"{root}/{{proposal}}/{{sample}}", spice_url="memory://", cache_url=False)
    assert repo.keys() == ["2025A1234", "2025B0001"]
    assert repo["2025A1234"].keys() == ["S001"] and repo["2025A1234"]["S001"].marker["n_frames"] == 6
    prop = repo["2025B0001"]
    assert prop.keys() == ["S7", "S8"]
    table = prop.table().set_index("key")
    assert table.loc["S7", "problem"] == "" and table.loc["S7", "frames"] == 6
    assert table.loc["S8", "problem"] == f"{root}/2025B0001/S8: the sample folder does not exist (a link to a missing folder?)"


# --- row 8: files that block, and a time limit per sample ------------------------------------
def test_a_fifo_marker_or_raw_file_never_blocks_listing_or_cooking(tmp_path):
    write_tree(local_fs(), str(tmp_path), {"2025A1234": ["S001", "S2"]})
    marker = tmp_path / "2025A1234" / "S2" / "train_integrated.json"
    marker.unlink()
    os.mkfifo(marker)
    sensor = tmp_path / "2025A1234" / "S001" / "train_integrated" / "sensor_1.npy"
    sensor.unlink()
    os.mkfifo(sensor)
    script = textwrap.dedent(f"""
        from eqegs_repo import Repository
        from eqegs_repo.errors import BadSample
        repo = Repository({str(tmp_path)!r} + "/{{proposal}}/{{sample}}", spice_url="memory://", cache_url=False)
        print(repo["2025A1234"].table().set_index("key")["problem"].to_dict())
        try:
            repo["2025A1234"]["S001"].cook("reconstruction")
        except BadSample as exc:
            print("cook:", exc)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    assert f"{marker}: expected a regular file, found not a regular file (a FIFO" in done.stdout
    assert f"cook: {sensor}: expected a regular file" in done.stdout
    assert "'S001': '" + str(sensor) in done.stdout  # the table's check=True reads the headers too


@pytest.fixture
def hanging(monkeypatch):
    """Sample.cook hangs (up to 30 s) for S2, as on a network file that does not answer. At the
    end the hung cooks are released and waited for: a cook given up on still runs in its thread,
    and one that finished during a later test would run inside that test's spies."""
    release, finished, started = threading.Event(), threading.Semaphore(0), []
    real = Sample.cook

    def cook(self, *args, **kwargs):
        if self.key != "S2":
            return real(self, *args, **kwargs)
        started.append(self.key)
        try:
            release.wait(30)
            return real(self, *args, **kwargs)
        finally:
            finished.release()

    monkeypatch.setattr(Sample, "cook", cook)
    yield
    release.set()
    for _ in started:
        finished.acquire(timeout=30)


def test_reanalysis_gives_a_hanging_sample_up_after_its_time_limit(tmp_path, hanging):
    repo = _local_tree(tmp_path, {"2025A1234": ["S001", "S2"]})
    start = time.monotonic()
    row = batch.cook_sample(repo["2025A1234"]["S2"], steps=("reconstruction",), timeout=0.5)
    assert time.monotonic() - start < 10
    assert row["status"] == "timed out" and "no result after 0.5 s" in row["error"]
    with pytest.raises(BadInput, match="timeout must be a number of seconds > 0"):
        batch.reanalyze(repo, timeout=0)
    for workers in (-2, 0, 1.5):  # -2 once started a cluster of no worker and hung for ever
        with pytest.raises(BadInput, match="workers must be a whole number of processes >= 1"):
            batch.reanalyze(repo, workers=workers)
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        # 5 s: ample for the healthy sample even on a loaded machine (1 s once timed out there)
        table = batch.reanalyze(repo, steps=("reconstruction",), client=client, progress=False, timeout=5.0)
    assert table.set_index("sample").status.to_dict() == {"S001": "ok", "S2": "timed out"}
    assert time.monotonic() - start < 30


# --- issue 20, L8: what a listing of many samples works out once ----------------------------
def test_a_listing_works_out_what_its_samples_share_once(tmp_path, monkeypatch):
    import collections

    import fsspec.implementations.local

    import spice.view
    from eqegs_repo.cooking.inputs import RawRun
    from eqegs_repo.io import layout

    write_tree(local_fs(), str(tmp_path), {"P1": [f"S{i}" for i in range(1, 9)]})
    repo = Repository(f"{tmp_path}/{{proposal}}/{{sample}}", spice_url="memory://", cache_url=str(tmp_path / "cache"))
    prop = repo["P1"]
    prop.spice.seed("q_integration", bg_sample_id="S1")
    prop.spice.seed("q_range", anchor="S5", q_min=10.0, q_max=12.0)  # S5..S8 inherit another record
    resolved, opened, listed = [], [], collections.Counter()
    original_resolve, original_open, original_ls = (spice.view.ResolvedView._resolve, RawRun.__init__,
                                                    fsspec.implementations.local.LocalFileSystem.ls)
    original_scanned = layout._scanned
    monkeypatch.setattr(spice.view.ResolvedView, "_resolve", lambda self, *found: resolved.append(self.key) or original_resolve(self, *found))
    monkeypatch.setattr(RawRun, "__init__", lambda self, sample: opened.append(sample.key) or original_open(self, sample))
    monkeypatch.setattr(fsspec.implementations.local.LocalFileSystem, "ls",
                        lambda self, path, detail=False, **kw: listed.update([path]) or original_ls(self, path, detail, **kw))
    monkeypatch.setattr(layout, "_scanned", lambda path: listed.update([path]) or original_scanned(path))
    table = prop.table().set_index("key")
    assert resolved == ["S1", "S5"]  # one resolution per set of records, not one per sample and use
    assert opened == [f"S{i}" for i in range(1, 9)]  # each run once: the background's not again per sample subtracting it
    assert len(listed) > 8 and max(listed.values()) == 1, listed  # every folder listed once
    assert table.loc["S1", "role"] == "background" and table.loc["S1", "background_for"] == "S2,S3,S4,S5,S6,S7,S8"
    assert list(table["problem"]) == [""] * 8
    (tmp_path / "P1" / "S6" / "train_integrated" / "sensor_1.npy").write_bytes(b"\x93NUMPY")  # still its own problem
    table = Repository(f"{tmp_path}/{{proposal}}/{{sample}}", spice_url="memory://")["P1"].table().set_index("key")
    assert "S6/train_integrated/sensor_1.npy: not a readable .npy file" in table.loc["S6", "problem"]
    assert list(table.drop("S6")["problem"]) == [""] * 7


def test_a_local_listing_gives_the_entries_fsspec_gives(tmp_path):
    from eqegs_repo import snapshot
    from eqegs_repo.io import layout

    (tmp_path / "marker.json").write_text("{}")
    (tmp_path / "folder").mkdir()
    (tmp_path / "to_file").symlink_to(tmp_path / "marker.json")
    (tmp_path / "to_nothing").symlink_to(tmp_path / "gone")
    os.mkfifo(tmp_path / "fifo")
    fs = local_fs()
    mine = sorted(layout._scanned(str(tmp_path)), key=lambda e: e["name"])
    assert mine == sorted(fs.ls(str(tmp_path), detail=True), key=lambda e: e["name"])
    assert {e["name"].rsplit("/", 1)[1]: e["type"] for e in mine}["fifo"] == "other"
    with snapshot.scope():  # a missing folder is missing every time it is asked for
        for _ in range(2):
            with pytest.raises(FileNotFoundError):
                layout.listing(fs, str(tmp_path / "gone"))
            assert not layout.listed_exists(fs, str(tmp_path / "gone" / "x.npy"))
        assert layout.listed_exists(fs, str(tmp_path / "marker.json"))
        assert layout.listed_info(fs, str(tmp_path / "to_file"))["size"] == 2


def test_eqegs_ls_imports_no_scipy(tmp_path):
    write_tree(local_fs(), str(tmp_path), {"P1": ["S1", "S2"]})
    script = textwrap.dedent(f"""
        import sys
        from eqegs_repo.cli.main import main
        assert main(["ls", {str(tmp_path)!r}, "P1", "--cache-url", {str(tmp_path / "cache")!r}]) in (0, None)
        print("scipy" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    assert "S1" in done.stdout and done.stdout.split()[-1] == "False", done.stdout


def test_inside_a_listing_each_caller_gets_its_own_fingerprint_values(tmp_path):
    """Samples that resolve the same records share their values inside a listing; a caller that
    changes its copy (the Monte-Carlo seed drops the calibration folder) changes no one else's."""
    from eqegs_repo import snapshot
    from eqegs_repo.params.effective import StepParameters

    write_tree(local_fs(), str(tmp_path), {"P1": ["S1", "S2"]})
    prop = Repository(f"{tmp_path}/{{proposal}}/{{sample}}", spice_url="memory://")["P1"]
    with snapshot.scope():
        first, second = (StepParameters(prop[key].spice, {}, label=key).fingerprint_values(["calibration"])
                         for key in ("S1", "S2"))
        assert first == second
        first["calibration"].pop("folder")
        assert "folder" in second["calibration"]
