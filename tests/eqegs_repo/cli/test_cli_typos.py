"""No silent typos: every name typed on the command line is checked before any work starts, and
a wrong one exits non-zero naming the closest existing names. Also: ``eqegs ls`` right after
the demo, ``--version``, ``cook``'s summary and ``--skip-existing``."""
import re

import pytest

from eqegs_repo import __version__, batch
from eqegs_repo.cli.main import main
from eqegs_repo.simulate import synthetic


@pytest.fixture(scope="module")
def demo_tree(tmp_path_factory):
    """The demo (tiny preset): a cooked tree with an eqegs.yaml naming its cache."""
    base = tmp_path_factory.mktemp("demo")
    assert main(["demo", str(base)]) == 0
    return base, str(synthetic.eqegs_root(base))


@pytest.fixture
def no_cluster(monkeypatch):
    """Fail the test if reanalyze starts a local Dask cluster."""
    def refuse(*args, **kwargs):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(batch, "local_cluster", refuse)


def run(capsys, *words):
    """``(exit status, stdout, stderr)`` of ``eqegs words...``."""
    status = main(list(words))
    out, err = capsys.readouterr()
    return status, out, err


def test_ls_right_after_the_demo_shows_the_cooked_samples_in_120_columns(demo_tree, capsys):
    _, root = demo_tree
    status, out, _ = run(capsys, "ls", root, "2025A1234")
    assert status == 0
    lines = out.splitlines()
    assert max(map(len, lines)) <= 120
    cooked = {line.split()[0]: line.split()[-1] for line in lines[1:] if line.startswith(("S0", " "))}
    assert {cooked[k] for k in ("S001", "S002", "S003")} == {"RQE"}    # the demo's cache, via eqegs.yaml
    assert lines[0].split()[-2:] == ["cooked", "background"] and "E e_spectrum_and_isf" in out
    assert "for S001,S002,S003" in next(line for line in lines if line.startswith("S000"))
    status, out, _ = run(capsys, "ls", root)
    assert status == 0 and "p2025A1234" in out and max(map(len, out.splitlines())) <= 120


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and f"eqegs {__version__}" in capsys.readouterr().out


def test_spice_type_typos_suggest_the_type(demo_tree, capsys):
    _, root = demo_tree
    for words in (["show", root, "2025A1234", "S001", "--type", "q_rnge"],
                  ["history", root, "2025A1234", "q_rnge"],
                  ["types", "q_rnge"]):
        status, out, err = run(capsys, "spice", *words)
        assert status == 1 and out == ""
        assert "no spice type 'q_rnge' (closest: q_range" in err


def test_cook_field_typo_suggests_the_field_before_cooking(demo_tree, capsys):
    _, root = demo_tree
    status, out, err = run(capsys, "cook", root, "2025A1234", "S001", "--set", "q_mn=3")
    assert status == 1 and out == ""
    assert "unknown parameter 'q_mn'" in err and "closest: q_min," in err   # q_min first, not a-z
    status, _, err = run(capsys, "cook", root, "2025A1234", "S001", "--set", "q_min=-3")
    assert status == 1 and "q_range.q_min = -3" in err


def test_unknown_proposal_and_sample_suggest_the_closest(demo_tree, capsys):
    _, root = demo_tree
    status, _, err = run(capsys, "cook", root, "2025A1243", "S001")
    assert status == 1 and "no proposal '2025A1243'; closest: '2025A1234'" in err
    status, _, err = run(capsys, "info", root, "2025A1234", "S01")
    assert status == 1 and "no sample 'S01'; closest:" in err and "'S001'" in err


def test_reanalyze_selection_typos_exit_2_before_any_cluster(demo_tree, capsys, no_cluster):
    _, root = demo_tree
    status, out, err = run(capsys, "reanalyze", root, "--samples", "X*")
    assert status == 2 and out == "" and "no sample of the chosen proposals matches 'X*'" in err
    status, _, err = run(capsys, "reanalyze", root, "--proposals", "2025A123")
    assert status == 2 and "no proposal matches '2025A123' (closest: 2025A1234" in err
    status, _, err = run(capsys, "reanalyze", root, "--samples", "S001,S00[7-9]")
    assert status == 2 and "'S00[7-9]'" in err              # every pattern must match something
    status, _, err = run(capsys, "reanalyze", root, "--where", "q_range.q_min=99")
    assert status == 2 and "no sample of" in err and "matches the selection" in err


def test_reanalyze_name_typos_fail_once_before_any_cluster(demo_tree, capsys, no_cluster):
    _, root = demo_tree
    status, _, err = run(capsys, "reanalyze", root, "--set", "q_mn=3")
    assert status == 1 and err.count("\n") == 1 and "closest: q_min," in err
    status, _, err = run(capsys, "reanalyze", root, "--where", "calibraton.velocity_number=1")
    assert status == 1 and "closest: calibration" in err
    status, _, err = run(capsys, "reanalyze", root, "--where", "calibration.velocity_numbr=1")
    assert status == 1 and "no field 'velocity_numbr' (closest: velocity_number" in err


def test_ls_on_the_wrong_folder_level_says_what_it_found(demo_tree, capsys):
    base, root = demo_tree
    status, out, err = run(capsys, "ls", f"{root}/2025A1234")         # a proposal folder
    assert status == 1 and out == ""
    assert "holds sample folders 1 level(s) down" in err and f"probably {root}" in err
    status, _, err = run(capsys, "ls", f"{root}/2025A1234/S001")      # a sample folder
    assert status == 1 and "is a sample folder" in err and f"probably {root}" in err
    status, _, err = run(capsys, "ls", str(base))                      # the folder above the tree
    assert status == 1 and "sample folders are 5 levels below" in err and f"probably {root}" in err
    status, out, _ = run(capsys, "ls", str(base / "truth"))            # folders, but no samples
    assert status == 0 and "no folder holding train_integrated.json within 5 levels" in out


def test_ls_of_an_empty_tree_is_not_an_error(tmp_path, capsys):
    status, out, _ = run(capsys, "ls", str(tmp_path))
    assert status == 0 and "no proposals yet" in out


def test_cook_prints_a_summary_and_export_twice_suggests_a_flag_that_exists(demo_tree, capsys):
    _, root = demo_tree
    words = ["cook", root, "2025A1234", "S002"]
    status, out, _ = run(capsys, *words)
    lines = out.splitlines()
    assert status == 0 and len(lines) == 5 and "<xarray.Dataset>" not in out
    assert re.search(r"tau = [0-9.]+ ± [0-9.]+ ns, f_q = [0-9.]+ ± [0-9.]+,", lines[1]), lines[1]  # measured.with_error
    assert re.search(r"\(q 11\.\.13 nm\^-1 requested; weighted q 1[12]\.[0-9]{3}, pixels [0-9.]+\.\.[0-9.]+ nm\^-1\):$",
                     lines[0]), lines[0]
    assert lines[2].startswith("  physics check"), lines[2]  # all passed, or one line per flagged check
    assert lines[3].startswith("  from the cache: ") and "/cache/2025A1234__S002__" in lines[3]
    status, out, _ = run(capsys, *words, "-v")
    assert status == 0 and out.startswith("<xarray.Dataset>")
    assert run(capsys, *words, "--export")[0] == 0
    status, _, err = run(capsys, *words, "--export")
    assert status == 1 and "add --overwrite to replace or --skip-existing to leave it" in err
    status, out, _ = run(capsys, *words, "--export", "--skip-existing")
    assert status == 0 and "left alone (--skip-existing)" in out
    status, _, err = run(capsys, *words, "--export", "--skip-existing", "--overwrite")
    assert status == 1 and "contradict" in err
