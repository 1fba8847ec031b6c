"""``eqegs demo`` writes its tree whole or not at all: a demo killed while writing leaves no
partial tree to be shown later, and the next demo removes its leftovers with a warning
(docs/robustness.md, issue 20: L9)."""
import os
import subprocess
import sys
import textwrap

import pytest

from eqegs_repo import BadInput, Repository
from eqegs_repo.cli.main import main
from eqegs_repo.simulate import demo, synthetic
from tests.helpers import ROOT

KILLED_WHILE_WRITING = textwrap.dedent("""
    import os, signal, sys
    from eqegs_repo.simulate import demo, synthetic
    written = synthetic.write_sample
    count = [0]

    def write_sample(*args, **kwargs):
        count[0] += 1
        if count[0] == 3:                    # two runs written, the third on its way: killed
            os.kill(os.getpid(), signal.SIGKILL)
        return written(*args, **kwargs)

    synthetic.write_sample = write_sample
    sys.exit(__import__("eqegs_repo.cli.main", fromlist=["main"]).main(["demo", sys.argv[1]]))
""")


def test_a_demo_killed_while_writing_leaves_no_partial_tree_and_the_next_cleans_up(tmp_path, capsys,
                                                                                   monkeypatch):
    base = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-c", KILLED_WHILE_WRITING, str(base)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == -9, done.stderr[-2000:]
    root = synthetic.eqegs_root(base)
    assert not root.exists() and not (base / "truth").exists()         # nothing half-written in view
    leftover = [p.name for p in base.iterdir()]
    assert len(leftover) == 1 and leftover[0].startswith(demo.STAGING_PREFIX)
    with pytest.raises(BadInput, match="does not exist"):
        Repository(str(root))
    assert main(["ls", str(root)]) == 1
    capsys.readouterr()
    with pytest.warns(UserWarning, match=rf"removing {base}/{leftover[0]}: the partial tree of a demo that was "
                                         "stopped while writing it"):
        assert demo.write_tree(base, preset="tiny", seed=1) == root
    assert sorted(p.name for p in base.iterdir()) == ["UserData", "truth"]
    tree = Repository(str(root))
    assert tree.keys() == list(synthetic.DEFAULT_PROPOSALS)
    assert [len(tree[key].keys()) for key in tree.keys()] == [4, 3]  # background + (3, 2) samples
    truth = synthetic.load_truth(base, synthetic.DEFAULT_ACCOUNT, "2025A1234", "S003").params
    # a demo stopped while seeding spice: the next one seeds the rest and cooks
    prop = tree["2025A1234"]
    seed, calls = prop.spice.seed, []

    def stopped_at_the_fourth(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 4:
            raise KeyboardInterrupt
        return seed(*args, **kwargs)

    monkeypatch.setattr(prop.spice, "seed", stopped_at_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        demo.seed_spice(prop, truth, bg_n_points=8, isf_error_threshold=0.1, n_mc=200)
    assert main(["demo", str(base)]) == 0
    assert "demo tree already at" in capsys.readouterr().out
    assert (base / "report.md").is_file()
    again = Repository(str(root))["2025A1234"].spice
    assert [r.revision for r in again.history("sensor_layout")] == [1]   # seeded before the stop: left alone
    assert [r.revision for r in again.history("q_range")] == [1]         # seeded by the next demo


def test_a_truth_folder_without_its_tree_is_removed_with_a_warning(tmp_path, capsys):
    base = tmp_path / "demo"
    stale = base / "truth" / synthetic.DEFAULT_ACCOUNT / "2025A1234"
    stale.mkdir(parents=True)
    (stale / "S001.json").write_text("{}")
    (base / f"{demo.STAGING_PREFIX}{os.getpid()}-0000").mkdir()        # a stopped demo of this process id
    with pytest.warns(UserWarning) as caught:
        demo.remove_leftovers(base)
    messages = [str(w.message) for w in caught]
    assert any(f"removing {base}/truth/{synthetic.DEFAULT_ACCOUNT}: the truth of a demo tree that was never put "
               "in place" in m for m in messages) and len(messages) == 2
    assert list(base.iterdir()) == [base / "truth"] and not (base / "truth" / synthetic.DEFAULT_ACCOUNT).exists()
    running = base / f"{demo.STAGING_PREFIX}1-0000"                     # process 1 runs: another demo's folder
    running.mkdir()
    assert demo.remove_leftovers(base) == [] and running.exists()
