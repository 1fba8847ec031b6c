"""Reanalysis across proposals on a LocalCluster, and watch mode."""
import threading

import pytest

from eqegs_repo import BadInput, Repository, batch
from eqegs_repo import watch as watching
from tests.helpers.cooktrees import BACKGROUND, image_params, seed_spice, write_runs

PROPOSALS = ("2025A0001", "2025A0002", "2025B0003")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """3 proposals x 4 samples (+ a background run each), spice on disk, one broken sample."""
    base = tmp_path_factory.mktemp("batch")
    params = image_params(n_frames=256)
    for i, proposal in enumerate(PROPOSALS):
        write_runs(base, params, [10 * i + k for k in range(4)], proposal=proposal)
    repo = Repository(f"{base}/{{proposal}}/{{sample}}", cache_url=f"{base}/.cache")
    for proposal in PROPOSALS:
        seed_spice(repo[proposal], params, bg_n_points=10, n_mc=20)
    repo[PROPOSALS[0]].spice.update("e_spectrum", "S003", n_mc=30)
    broken = base / PROPOSALS[1] / "S002" / "train_integrated" / "sensor_1.npy"
    broken.write_bytes(broken.read_bytes()[:-100])
    return base


def cached_files(base):
    return sorted(p for p in (base / ".cache").rglob("*") if p.is_file())


def test_reanalysis_on_a_local_cluster_then_nothing_to_do(tree):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        repo = Repository(f"{tree}/{{proposal}}/{{sample}}", cache_url=f"{tree}/.cache")
        first = batch.reanalyze(repo, samples="S00[1-4]", client=client, progress=False)
        assert list(first.columns) == list(batch.COLUMNS)
        assert len(first) == 12
        assert first.status.value_counts().to_dict() == {"ok": 11, "failed": 1}
        failed = first[first.status == "failed"].iloc[0]
        assert (failed.proposal, failed["sample"]) == (PROPOSALS[1], "S002")
        assert "sensor_1.npy" in failed.error and "truncated" in failed.error
        ok = first[first.status == "ok"]
        assert ok[["f_q", "tau_ns", "tau_error_ns", "centre_x", "q_min"]].notna().all().all()
        assert (ok.q_min == 11.0).all() and ok.spice_fingerprint.str.len().eq(64).all()
        # the samples of a proposal waited for the first, which integrated the background once
        shared = [p for p in cached_files(tree) if p.parent.name == "background_integration"]
        assert sorted(p.parent.parent.name.split("__")[0] for p in shared) == sorted(PROPOSALS)
        kinds = [repo[p][s].cook("q_integration").attrs["passes"]["background"]
                 for p in PROPOSALS for s in ("S001", "S003", "S004")]
        assert kinds == ["read", "shared", "shared"] * 3
        files = cached_files(tree)
        second = batch.reanalyze(repo, samples="S00[1-4]", client=client, progress=False)
        assert second.status.value_counts().to_dict() == {"up-to-date": 11, "failed": 1}
        assert cached_files(tree) == files                      # nothing cooked, nothing written
        assert (second.spice_fingerprint[second.status != "failed"]
                == first.spice_fingerprint[first.status != "failed"]).all()


def test_selection_by_pattern_spice_value_and_callable(tree):
    repo = Repository(f"{tree}/{{proposal}}/{{sample}}")
    keys = lambda samples: [(s.proposal.key, s.key) for s in samples]  # noqa: E731
    assert keys(batch.select_samples(repo, proposals="2025B*", samples=["S001", "S004"])) == [
        ("2025B0003", "S001"), ("2025B0003", "S004")]
    assert keys(batch.select_samples(repo, where={"e_spectrum.n_mc": 30})) == [
        (PROPOSALS[0], "S003"), (PROPOSALS[0], "S004")]
    chosen = batch.select_samples(repo, proposals=PROPOSALS[2], select=lambda s: s.key.endswith("2"))
    assert keys(chosen) == [(PROPOSALS[2], "S002")]
    with pytest.raises(BadInput, match="no field 'speed'"):
        batch.select_samples(repo, where={"e_spectrum.speed": 1})
    with pytest.raises(BadInput, match="not TYPE.FIELD"):
        batch.select_samples(repo, where={"nonsense": 1})


def test_cook_sample_reports_failures_instead_of_raising(tree):
    repo = Repository(f"{tree}/{{proposal}}/{{sample}}", cache_url=False)
    row = batch.cook_sample(repo[PROPOSALS[1]]["S002"])
    assert row["status"] == "failed" and "truncated" in row["error"]
    row = batch.cook_sample(repo[PROPOSALS[0]]["S001"], steps=["q_integration"])
    assert row["status"] == "ok" and row["tau_ns"] is None and row["centre_x"] > 0
    full = batch.cook_sample(repo[PROPOSALS[0]]["S001"])     # the centre travels with the ISF
    assert (full["centre_x"], full["centre_y"]) == (row["centre_x"], row["centre_y"])


def test_watch_cooks_each_new_sample_once(tmp_path):
    params = image_params(n_frames=256)
    write_runs(tmp_path, params, [1])
    repo = Repository(f"{tmp_path}/{{proposal}}/{{sample}}", cache_url=False)
    seed_spice(repo["2025A1234"], params, bg_n_points=10, n_mc=20)
    stop, seen = threading.Event(), []

    def arrived(row):
        seen.append(row)
        if len(seen) == 2:
            stop.set()

    worker = threading.Thread(target=watching.watch, args=(repo,), daemon=True,
                              kwargs=dict(samples="S*", interval=0.05, stop=stop, on_result=arrived))
    worker.start()
    write_runs(tmp_path, params, [2, 3], first=2)   # S002, S003 arrive after the start
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert sorted(r["sample"] for r in seen) == ["S002", "S003"]   # S001 was there before
    assert all(r["status"] == "ok" for r in seen)


def test_reanalyze_command_prints_the_table_and_fails_when_a_sample_failed(tree, tmp_path, capsys):
    import pandas as pd

    from eqegs_repo.cli.main import main

    csv = tmp_path / "out.csv"
    status = main(["reanalyze", f"{tree}/{{proposal}}/{{sample}}", "--proposals", "2025A000[12]",
                   "--samples", "S00[12]", "--workers", "1", "--no-progress", "--set", "n_mc=25",
                   "--csv", str(csv)])
    captured = capsys.readouterr()
    assert status == 1 and "1 sample(s) failed" in captured.err and "3 ok, 1 failed" in captured.err
    table = pd.read_csv(csv)
    assert list(zip(table.proposal, table["sample"], table.status)) == [
        (PROPOSALS[0], "S001", "ok"), (PROPOSALS[0], "S002", "ok"),
        (PROPOSALS[1], "S001", "ok"), (PROPOSALS[1], "S002", "failed")]
    assert "tau_ns" in captured.out and "truncated" in captured.out


def test_where_values_are_yaml_scalars_and_bad_ones_are_named():
    assert batch.parse_where(["e_spectrum.n_mc=30", "q_integration.bg_sample_id=null"]) == {
        "e_spectrum.n_mc": 30, "q_integration.bg_sample_id": None}
    with pytest.raises(BadInput, match=r"--where 'e_spectrum.n_mc=\[1,'"):
        batch.parse_where(["e_spectrum.n_mc=[1,"])
    with pytest.raises(BadInput, match="expected TYPE.FIELD=VALUE"):
        batch.parse_where(["e_spectrum.n_mc"])


def test_the_background_run_is_not_a_failure(tree, tmp_path, capsys):
    from eqegs_repo.cli.main import main

    repo = Repository(f"{tree}/{{proposal}}/{{sample}}", cache_url=False)
    background = repo[PROPOSALS[0]][BACKGROUND]
    row = batch.cook_sample(background)
    assert row["status"] == "background" and row["error"] == "" and row["centre_x"] > 0 and row["tau_ns"] is None
    assert background.cook("q_integration").attrs["background"] is None  # integrated, nothing subtracted
    with pytest.raises(BadInput, match=rf"{BACKGROUND} is the background run of proposal {PROPOSALS[0]} "
                                       r"\(q_integration.bg_sample_id = 'S000_noise' .*cook reconstruction or "
                                       r"q_integration instead"):
        background.cooked
    csv = tmp_path / "healthy.csv"
    status = main(["reanalyze", f"{tree}/{{proposal}}/{{sample}}", "--proposals", PROPOSALS[0], "--workers", "1",
                   "--no-progress", "--set", "n_mc=25", "--csv", str(csv)])
    captured = capsys.readouterr()
    assert status == 0 and "failed" not in captured.err, captured.err
    import pandas as pd

    table = pd.read_csv(csv)
    statuses = dict(zip(table["sample"], table.status))
    assert statuses.pop(BACKGROUND) == "background" and list(statuses) == ["S001", "S002", "S003", "S004"]
    assert set(statuses.values()) <= {"ok", "up-to-date"}  # an earlier test may have cooked some


def test_background_of_a_sample_with_overrides(tree):
    repo = Repository(f"{tree}/{{proposal}}/{{sample}}")
    sample = repo[PROPOSALS[0]]["S001"]
    assert batch.background_of(sample) == (PROPOSALS[0], "S000_noise")
    assert batch.background_of(sample, {"q_integration": {"bg_sample_id": None}}) is None
    assert batch.background_of(sample, {"no_such_field": 1}) is None  # reported by cook_sample instead
