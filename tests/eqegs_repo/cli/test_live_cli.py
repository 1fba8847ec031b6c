"""``eqegs demo --live`` plays a measurement while watching it; ``eqegs watch --target-error``."""
import re

from eqegs_repo import Repository
from eqegs_repo.simulate import demo, synthetic
from eqegs_repo.watch import read_history
from tests.eqegs_repo.cli.test_cli_text import run


def test_demo_live_prints_tau_and_the_projection_after_each_growth(tmp_path):
    synthetic.write_tree(tmp_path, proposals=("2025A1234",), samples_per_proposal=2)
    status, out, err = run("demo", str(tmp_path), "--live", "--target-error", "0.04")
    assert status == 0, err
    played = out[out.index("playing a measurement"):]
    grown = re.findall(r"2025A1234/(S00[12]) \(ok\): tau = [\d.]+ ± [\d.]+ ns", played)
    assert sorted(grown) == ["S001"] * 3 + ["S002"] * 3
    trains = re.findall(r"2025A1234/S001: (\d+) trains, exposure [\d.]+ s; rel. error [\d.]+; target 0.04 at", played)
    assert trains == ["500", "1000", "2000"]
    assert played.count("(rule -0.5)") == 4  # a slope once a sample has two exposures
    folder = re.search(r"history in (\S+)", played).group(1)
    history = read_history(Repository(str(synthetic.eqegs_root(tmp_path))), history_dir=folder)
    assert len(history) == 6 and sorted(history.n_trains.unique()) == [500, 1000, 2000]
    assert "6 history rows" in played and demo.default_folder() not in out


def test_watch_refuses_a_target_error_that_is_no_relative_error_before_it_starts(tmp_path):
    for bad in ("0", "1.5", "nan"):
        status, _, err = run("watch", str(tmp_path), "--target-error", bad)
        assert status == 1 and "watching" not in err
        assert f"target_error must be a relative error of tau between 0 and 1 (e.g. 0.05), got {float(bad)}" in err
