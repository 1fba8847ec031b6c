"""Exports that are stopped, raced or refused (issue 12 rows 3, 4, 15, 16; docs/robustness.md).

Writers are killed for real: a forked child exports and calls ``os._exit`` at the k-th rename
of publishing, so no clean-up runs, as with ``kill -9``.
"""
import json
import multiprocessing
import os
import shutil
import signal
import socket
import time

import numpy as np
import pytest

from eqegs_repo import BadInput, Repository, batch
from eqegs_repo.cooking import export as exporting
from eqegs_repo.cooking import publish
from eqegs_repo.io.app_format import names as app_names
from eqegs_repo.simulate import demo, synthetic

PROPOSAL = "2025A1234"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Tiny tree, spice in memory (inherited by forked children), q_integration cooked."""
    base = tmp_path_factory.mktemp("robust_export")
    made = synthetic.write_tree(base, proposals=(PROPOSAL,), preset="tiny", seed=1, samples_per_proposal=1)
    truth = synthetic.load_truth(base, made.account, PROPOSAL, "S001")
    repo = Repository(made.url(), spice_url="memory://spice-robust-export", cache_url=f"{base}/cache")
    demo.seed_spice(repo[PROPOSAL], truth.params, bg_n_points=8, isf_error_threshold=0.1, n_mc=40)
    repo[PROPOSAL]["S001"].cook("q_integration")
    return repo


@pytest.fixture
def sample(tree, monkeypatch):
    monkeypatch.setattr(exporting, "can_draw", lambda: False)  # no figures: fast, and forks stay simple
    return tree[PROPOSAL]["S001"]


def _in_child(work, limit=60.0):
    """Run ``work()`` in a forked child; its exit code (0 when work returned, 3 when it raised)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            work()
            os._exit(0)
        except BaseException:
            os._exit(3)
    deadline = time.monotonic() + limit
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the exporting child took more than {limit} s")
        time.sleep(0.02)


def _export_killed_at(sample, k, **kwargs):
    """Export in a child that dies at the k-th rename of publishing; its exit code (9: killed)."""
    def work():
        calls = []
        real = publish.move

        def dying(fs, source, destination):
            calls.append(source)
            if len(calls) == k:
                os._exit(9)
            real(fs, source, destination)

        publish.move = exporting.move = dying
        sample.export("q_integration", **kwargs)

    return _in_child(work)


def _assert_complete(sample, name, zip_path):
    folder = sample.path + "/q_integration" + ("" if name == "main" else f"/{name}")
    assert os.path.exists(f"{folder}/{app_names.INFO_JSON}") and os.path.exists(zip_path)
    assert not [n for n in os.listdir(sample.path) if n.endswith(app_names.PUBLISHING_SUFFIX)]  # no claim
    back = sample.results["q_integration"][name]
    assert np.array_equal(back.intensity.values, sample.cook("q_integration").intensity.values)


def _remove_main(sample):
    folder = f"{sample.path}/q_integration"
    for name in ("rdf.npz", "dl", "log"):
        path = f"{folder}/{name}"
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    zip_path = f"{sample.proposal.path}/download/q_integration_S001.zip"
    if os.path.exists(zip_path):
        os.remove(zip_path)


def test_a_killed_first_export_next_to_a_subfolder_is_never_a_result_and_is_repaired(sample):
    sub = sample.export("q_integration", subdir="A")
    zip_path = f"{sample.proposal.path}/download/q_integration_S001.zip"
    kills = 0
    for k in range(1, 12):
        code = _export_killed_at(sample, k)
        if code == 0:  # publishing needs fewer than k renames
            break
        assert code == 9
        kills += 1
        results = sample.results["q_integration"]
        assert "main" not in results and "A" in results      # never read as a result
        if os.listdir(f"{sample.path}/q_integration") != ["A"]:   # something arrived: flagged
            assert "main" in results.incomplete
            assert "main (incomplete)" in sample.step_results()["q_integration"]
            with pytest.raises(BadInput, match="incomplete.*skip_existing=True"):
                results["main"]
        repaired = sample.export("q_integration", skip_existing=True)
        assert not repaired.skipped
        _assert_complete(sample, "main", zip_path)
        assert sample.export("q_integration", skip_existing=True).skipped
        _remove_main(sample)
    assert kills >= 3  # the entries, dl/ and the zip each moved separately
    assert os.path.exists(f"{sub.folder}/{app_names.INFO_JSON}")  # the sub-folder result untouched


def test_a_killed_export_of_a_new_folder_is_repaired_by_reanalysis(sample):
    overrides = {"q_integration": {"output_subdir": "B"}}
    zip_path = f"{sample.proposal.path}/download/q_integration_S001_B.zip"
    for k in (1, 2):  # the folder in one rename, then the zip
        assert _export_killed_at(sample, k, subdir="B") == 9
        assert "B" not in sample.results["q_integration"]
        assert not os.path.exists(zip_path)
        row = batch.cook_sample(sample, steps=("q_integration",), overrides=overrides, export=True)
        assert row["status"] in ("ok", "up-to-date"), row["error"]
        _assert_complete(sample, "B", zip_path)
        shutil.rmtree(f"{sample.path}/q_integration/B")
        os.remove(zip_path)


def test_a_result_without_info_json_left_by_an_older_writer_is_flagged_and_repaired(sample):
    done = sample.export("q_integration", subdir="C")
    shutil.rmtree(f"{done.folder}/dl")
    assert "C (incomplete)" in sample.step_results()["q_integration"]
    assert "info.json is missing" in sample.results["q_integration"].incomplete["C"]
    assert not sample.export("q_integration", subdir="C", skip_existing=True).skipped
    _assert_complete(sample, "C", done.zip)


def test_a_live_claim_makes_a_second_export_wait_its_turn(sample):
    claim = publish.Claim(sample.fs, sample.path, "q_integration", "D", "q_integration/D")
    assert claim.acquire() is False
    try:
        with pytest.raises(BadInput, match=r"being written by another export \(process \d+"):
            sample.export("q_integration", subdir="D")
        assert sample.export("q_integration", subdir="D", skip_existing=True).skipped
        assert "D" not in sample.results["q_integration"]
    finally:
        claim.release()
    sample.export("q_integration", subdir="D")
    _assert_complete(sample, "D", f"{sample.proposal.path}/download/q_integration_S001_D.zip")


def test_a_stale_claim_of_a_dead_process_is_taken_over(sample, tmp_path):
    marker = app_names.publishing_marker(sample.path, "q_integration", "E")
    with open(marker, "w") as f:  # this host, a process that does not run (beyond the pid range)
        json.dump({"pid": 2 ** 23 + 12345, "host": socket.gethostname(), "started": time.time()}, f)
    claim = publish.Claim(sample.fs, sample.path, "q_integration", "E", "q_integration/E")
    assert claim.acquire() is True  # took the stale one over
    claim.release()
    with open(marker, "w") as f:  # a foreign host: stale only when old
        json.dump({"pid": 1, "host": "elsewhere", "started": time.time() - publish.STALE_AFTER_S - 1}, f)
    assert not sample.export("q_integration", subdir="E", skip_existing=True).skipped
    assert not os.path.exists(marker)


def _race(sample, subdir, skip_existing=False, racers=2):
    """``racers`` processes export the same result at once; their outcomes."""
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(racers), context.Queue()

    def racer():
        barrier.wait()
        try:
            done = sample.export("q_integration", subdir=subdir, skip_existing=skip_existing)
            queue.put(("skipped" if done.skipped else "written", ""))
        except BadInput as exc:
            queue.put(("refused", str(exc)))
        except Exception as exc:  # noqa: BLE001 - reported to the test
            queue.put(("error", repr(exc)))

    children = [context.Process(target=racer) for _ in range(racers)]
    for child in children:
        child.start()
    outcomes = [queue.get(timeout=60) for _ in children]
    for child in children:
        child.join(60)
    return sorted(outcomes)


def test_concurrent_exports_of_one_result_have_exactly_one_winner(sample):
    for attempt in range(6):
        subdir = f"race{attempt}"
        outcomes = _race(sample, subdir)
        assert [o[0] for o in outcomes] == ["refused", "written"], outcomes
        assert "already exist" in outcomes[0][1] or "being written" in outcomes[0][1]
        _assert_complete(sample, subdir, f"{sample.proposal.path}/download/q_integration_S001_{subdir}.zip")
    outcomes = _race(sample, "race_skip", skip_existing=True, racers=3)
    assert [o[0] for o in outcomes] == ["skipped", "skipped", "written"], outcomes


def test_names_too_long_for_a_file_system_are_refused_naming_them(sample, tmp_path):
    with pytest.raises(BadInput, match=r"q_integration\.output_subdir = 'aaaa.*\(300 characters\) is not allowed.*\{0,100\}"):
        sample.export("q_integration", subdir="a" * 300)
    long_key = "S" + "1" * 246
    shutil.copytree(sample.path, f"{sample.proposal.path}/{long_key}",
                    ignore=shutil.ignore_patterns("q_integration", "reconstruction", "e_spectrum_and_isf"))
    sample.proposal.refresh()
    try:
        with pytest.raises(BadInput, match=r"download zip of q_integration .* is 265 bytes long.*at most 255"):
            sample.proposal[long_key].export("q_integration")
    finally:
        shutil.rmtree(f"{sample.proposal.path}/{long_key}")
        sample.proposal.refresh()


def test_exports_into_read_only_trees_are_one_clear_error(sample, tmp_path, monkeypatch, capsys):
    import errno
    import zipfile

    from eqegs_repo.cli.main import main
    from spice import SpiceError

    real = type(sample.fs).makedirs

    def read_only(self, path, exist_ok=False):
        if str(path).startswith(sample.path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(self, path, exist_ok=exist_ok)

    monkeypatch.setattr(type(sample.fs), "makedirs", read_only)
    with pytest.raises(BadInput, match=rf"cannot write the result into {sample.path}: Read-only file system"):
        sample.export("q_integration", subdir="ro")
    args = ["cook", sample.repository.url, PROPOSAL, "S001", "--step", "q_integration", "--spice-url",
            "memory://spice-robust-export", "--cache-url", sample.repository.cache_url, "--export",
            "--set", 'q_integration={"output_subdir": "ro"}']
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"cannot write the result into {sample.path}: Read-only file system" in err
    monkeypatch.undo()
    # a zip:// tree is read-only by nature
    archive = tmp_path / "tree.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sample.fs.find(sample.path + "/train_integrated") + [sample.path + "/train_integrated.json"]:
            z.write(path, "T/P1/S1/" + os.path.relpath(path, sample.path))
    zipped = Repository("zip://T/{proposal}/{sample}", storage_options={"fo": str(archive)},
                        spice_url="memory://", cache_url=False)
    with pytest.raises(BadInput, match=r"cannot write the result into T/P1/S1"):
        zipped["P1"]["S1"].export("reconstruction", sensor_layout={
            "sensor_shape": [64, 16], "offsets": [[0, 0], [0, 16], [0, 32]], "canvas_shape": [64, 48]})
    with pytest.raises(SpiceError, match=r"cannot write q_range..r000001.yaml into the spice folder zip://T/P1/.spice .*nothing was stored"):
        Repository("zip://T/{proposal}/{sample}", storage_options={"fo": str(archive)})["P1"].spice.seed(
            "q_range", q_min=10.0, q_max=12.0)


def _dead_claim(path):
    """A claim left by a process of this host that does not run (beyond the pid range)."""
    with open(path, "w") as f:
        json.dump({"pid": 2 ** 23 + 12345, "host": socket.gethostname(), "started": time.time(),
                   "token": "dead"}, f)


def test_taking_over_a_stale_claim_has_exactly_one_holder_and_no_false_loser(tmp_path):
    """Issue 20 M4: racers take one stale claim over at once, round after round; in every round
    exactly one holds it, the others are told another export writes it, and the holder's
    release never fails (a racer once renamed a fresh claim away as if it were the stale one)."""
    from fsspec.implementations.local import LocalFileSystem

    fs, racers, rounds = LocalFileSystem(), 5, 40
    context = multiprocessing.get_context("fork")
    for round_ in range(rounds):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        _dead_claim(app_names.publishing_marker(str(folder), "q_integration"))
        tried, queue = context.Barrier(racers), context.Queue()

        def racer():
            claim = publish.Claim(fs, str(folder), "q_integration", "", "q_integration of P/S")
            try:
                claim.acquire()
                outcome = "held"
            except publish.Busy as exc:
                outcome = "busy" if "being written by another export" in str(exc) else f"busy: {exc}"
            tried.wait(30)  # every racer has tried while the holder still holds
            try:
                claim.release()
            except Exception as exc:  # noqa: BLE001 - reported to the test
                outcome += f", release failed: {exc!r}"
            queue.put(outcome)

        children = [context.Process(target=racer) for _ in range(racers)]
        for child in children:
            child.start()
        outcomes = sorted(queue.get(timeout=60) for _ in children)
        for child in children:
            child.join(60)
        assert outcomes == ["busy"] * (racers - 1) + ["held"], (round_, outcomes)
        assert not os.path.exists(app_names.publishing_marker(str(folder), "q_integration"))
        assert [n for n in os.listdir(folder) if "stale" in n] == []


def test_temporary_folders_of_killed_exports_are_removed_by_the_next_export(sample):
    """Issue 20 L2: a killed export's staging folder (and temporary zip) is removed by the next
    export of that result, with one CleanupWarning naming it; those of a running process, or of
    another host unless older than a day, are left alone."""
    from eqegs_repo.errors import CleanupWarning

    zip_path = f"{sample.proposal.path}/download/q_integration_S001_L.zip"
    assert _export_killed_at(sample, 1, subdir="L") == 9  # killed before its folder moved into place
    left = sorted(n for n in os.listdir(sample.path) if n.startswith(".q_integration-L.tmp-"))
    zips = [n for n in os.listdir(f"{sample.proposal.path}/download") if n.startswith(".q_integration_S001_L.zip.tmp-")]
    assert len(left) == 1 and len(zips) == 1, (left, zips)
    host, now, dead = publish.owned_suffix().split("-p")[0], int(time.time()), 2 ** 23 + 12345
    made = {f".q_integration-L.tmp-{host}-p{os.getpid()}-t{now}-aaaaaaaa": False,   # this process: running
            f".q_integration-L.tmp-elsewhere-p{dead}-t{now}-bbbbbbbb": False,        # another host, recent
            f".q_integration-L.old-elsewhere-p1-t{now - 2 * 86400}-cccccccc": True,  # another host, old
            f".q_integration-L.tmp-{host}-p{dead}-t{now}-dddddddd": True,            # this host, gone
            ".q_integration-L.tmp-0123456789ab": True,                               # an older writer's name
            f".q_integration-M.tmp-{host}-p{dead}-t{now}-eeeeeeee": False}           # another result's
    for name in made:
        os.makedirs(f"{sample.path}/{name}/dl")
    old = time.time() - 2 * 86400
    os.utime(f"{sample.path}/.q_integration-L.tmp-0123456789ab", (old, old))
    with pytest.warns(CleanupWarning, match=r"removed 5 left-over\(s\) of stopped exports .*process \d+ of this host is gone") as caught:
        sample.export("q_integration", subdir="L", skip_existing=True)
    assert len([w for w in caught if w.category is CleanupWarning]) == 1
    for name in left + zips:
        assert name in str(caught[0].message)
    remaining = sorted(n for n in os.listdir(sample.path) if n.startswith(".q_integration-"))
    assert remaining == sorted(n for n, removed in made.items() if not removed)
    assert not [n for n in os.listdir(f"{sample.proposal.path}/download") if ".tmp-" in n]
    _assert_complete(sample, "L", zip_path)
    for name in remaining:
        shutil.rmtree(f"{sample.path}/{name}")


def _info(folder):
    with open(f"{folder}/{app_names.INFO_JSON}") as f:
        return json.load(f)


def test_a_spice_change_shows_exports_as_stale_and_reanalysis_replaces_its_own(sample, capsys):
    """Issue 20 M9: after a spice change, listings show this library's exports as stale, and a
    reanalysis with export replaces the stale result of its own recipe (folder and zip, by the
    staged publishing) while one written with other overrides, and the app's, stay."""
    import zipfile

    from eqegs_repo.cli.main import main
    from eqegs_repo.display import compact_samples

    own = sample.export("q_integration", subdir="M9")
    other = sample.export("q_integration", subdir="N9", radial_bin_px=1.5)
    assert {"M9", "N9"} <= set(sample.step_results()["q_integration"])
    first = _info(own.folder)["fingerprint"]
    record = sample.proposal.spice.update("q_integration", hot_pixel_mad=12.0)
    try:
        listed = sample.step_results()["q_integration"]
        assert "M9 (stale)" in listed and "N9 (stale)" in listed
        table = sample.proposal.table()
        at = list(table["key"]).index("S001")
        assert "M9 (stale)" in table["q_integration"][at]
        assert compact_samples(table)["on_disk"][at][1] == "q"  # every result stale: lower case
        args = ["--spice-url", "memory://spice-robust-export", "--cache-url", sample.repository.cache_url]
        capsys.readouterr()
        assert main(["info", sample.repository.url, PROPOSAL, "S001", *args]) in (0, None)
        assert "M9 (stale)" in capsys.readouterr().out

        row = batch.cook_sample(sample, steps=("q_integration",), export=True,
                                overrides={"q_integration": {"output_subdir": "M9"}})
        assert row["status"] in ("ok", "up-to-date"), row["error"]
        now = _info(own.folder)
        assert now["fingerprint"] == row["spice_fingerprint"] != first
        with zipfile.ZipFile(own.zip) as z:
            assert json.loads(z.read(app_names.INFO_JSON))["fingerprint"] == now["fingerprint"]
        with open(f"{own.folder}/{app_names.LOG_FILE}") as f:
            assert f"replaces the stale result of fingerprint {first}" in f.read()
        assert not [n for n in os.listdir(sample.path) if n.startswith(".q_integration-M9.")]
        listed = sample.step_results()["q_integration"]
        assert "M9" in listed and "N9 (stale)" in listed
        # the same recipe again: up to date, left alone
        assert sample.export("q_integration", subdir="M9", skip_existing=True, replace_stale=True).skipped
        # another recipe at the same folder is never replaced without overwrite
        kept = _info(other.folder)["fingerprint"]
        row = batch.cook_sample(sample, steps=("q_integration",), export=True,
                                overrides={"q_integration": {"output_subdir": "N9"}})
        assert row["status"] in ("ok", "up-to-date"), row["error"]
        assert _info(other.folder)["fingerprint"] == kept
        # and without replace_stale, export leaves even its own stale result alone
        sample.proposal.spice.update("q_integration", hot_pixel_mad=11.0)
        done = sample.export("q_integration", subdir="M9", skip_existing=True)
        assert done.skipped and _info(own.folder)["fingerprint"] == now["fingerprint"]
        replaced = sample.export("q_integration", subdir="M9", replace_stale=True)
        assert replaced.replaced == now["fingerprint"] and not replaced.skipped
    finally:
        sample.proposal.spice.revert(record.parent)
    assert "M9 (stale)" in sample.step_results()["q_integration"]  # exported for hot_pixel_mad 11
    assert "N9 (stale)" not in sample.step_results()["q_integration"]  # the old recipe is current again
    for folder, zip_path in ((own.folder, own.zip), (other.folder, other.zip)):
        shutil.rmtree(folder)
        os.remove(zip_path)
