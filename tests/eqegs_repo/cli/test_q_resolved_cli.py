"""eqegs q-resolved: the ranges of one sample and the tau(q) law, printed; bad ranges one error."""
from eqegs_repo import Repository
from eqegs_repo.cli.main import main
from eqegs_repo.simulate import demo, synthetic


def test_q_resolved_command_prints_every_range_and_the_law(tmp_path, capsys):
    tree = synthetic.write_tree(tmp_path, proposals=("2025A1234",), preset="tiny", seed=1,
                                samples_per_proposal=1, tau_exponent=2.9, v_max_mm_s=4.0)
    truth = synthetic.load_truth(tmp_path, tree.account, "2025A1234", "S001")
    demo.seed_spice(Repository(tree.url())["2025A1234"], truth.params, bg_n_points=8, isf_error_threshold=0.1,
                    n_mc=60)  # records inside the tree, where the command finds them
    root, cache = tree.url().split("/{proposal}")[0], str(tmp_path / "cache")
    ranges = [arg for low in (8, 10, 12, 14, 16) for arg in ("--range", f"{low}:{low + 2}")]
    assert main(["q-resolved", root, "2025A1234", "S001", "--cache-url", cache, *ranges]) == 0
    out = capsys.readouterr().out
    assert out.count("  q ") == 5 and "weighted q 1" in out and "tau = " in out
    assert "tau(q) = tau0 (q/q0)^-n" in out and ", n = " in out
    assert main(["q-resolved", root, "2025A1234", "S001", "--cache-url", cache, "--beta", "shared", *ranges]) == 0
    assert capsys.readouterr().out.count("beta = ") == 5
    assert main(["q-resolved", root, "2025A1234", "S001", "--cache-url", cache, "--split", "2"]) == 0
    out = capsys.readouterr().out
    assert "q 11..12 nm^-1" in out and "q 12..13 nm^-1" in out and "tau(q)" not in out  # 2 ranges: no law
    assert main(["q-resolved", root, "2025A1234", "S001", "--cache-url", cache, "--range", "14:12"]) == 1
    assert "range 0 [14, 12] nm^-1: q_min must be below q_max" in capsys.readouterr().err
    assert main(["q-resolved", root, "2025A1234", "S001", "--cache-url", cache]) == 1
    assert "--range Q_MIN:Q_MAX" in capsys.readouterr().err
