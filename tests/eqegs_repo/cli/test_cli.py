import fsspec
import pytest

from eqegs_repo.cli.main import main
from tests.helpers.treeutil import write_tree


@pytest.fixture
def eqegs_dir(tmp_path):
    base = tmp_path / "UserData" / "u0000001" / "EQEGS"
    write_tree(fsspec.filesystem("file"), str(base), {"2025A1234": ["S2", "S10"], "2025B1": ["S1"]})
    return tmp_path, base


def test_ls_lists_proposals_and_samples(eqegs_dir, capsys):
    tmp_path, base = eqegs_dir
    assert main(["ls", str(tmp_path) + "/UserData/{account}/EQEGS/{proposal}/{sample}",
                 "-f", "account=u0000001"]) == 0
    out = capsys.readouterr().out
    assert "p2025A1234" in out and "p2025B1" in out
    assert main(["ls", str(base), "2025A1234"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["key", "frames", "sensors"]   # handle = key: not repeated
    assert [line.split()[0] for line in out[1:3]] == ["S2", "S10"]


def test_info_prints_marker_and_file_sizes(eqegs_dir, capsys):
    _, base = eqegs_dir
    assert main(["info", str(base), "2025A1234", "S10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<SampleInfo 2025A1234/S10>")
    assert [line.split() for line in out.splitlines() if "n_frames" in line] == [["n_frames", "6"]]
    assert "sensor_0.npy (" in out and max(map(len, out.splitlines())) <= 120
    assert main(["info", str(base), "2025A1234", "S10", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"n_frames": 6' in out and '"sensor_0.npy"' in out and '"results": {}' in out


def test_user_errors_exit_1_with_a_message(eqegs_dir, capsys):
    tmp_path, base = eqegs_dir
    assert main(["info", str(base), "2025A1234", "S3"]) == 1
    assert "no sample 'S3'; closest: 'S2'" in capsys.readouterr().err
    assert main(["ls", str(tmp_path) + "/UserData/{account}/EQEGS/{proposal}/{sample}"]) == 1
    assert "account" in capsys.readouterr().err
    assert main(["ls", str(tmp_path / "nowhere")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_demo_writes_a_tree_once_and_shows_it(tmp_path, capsys):
    target = tmp_path / "demo"
    assert main(["demo", str(target)]) == 0
    out = capsys.readouterr().out
    assert "writing a synthetic E-QEGS tree" in out
    assert "p2025A1234" in out and "S000_noise" in out and "S001" in out
    assert "recovered within 2 sigma" in out and (target / "report.md").exists()
    assert "tau" in (target / "report.md").read_text()
    marker = target / "UserData" / "u0000000" / "EQEGS" / "2025A1234" / "S001" / "train_integrated.json"
    before = marker.stat().st_mtime_ns
    assert main(["demo", str(target)]) == 0
    assert "already at" in capsys.readouterr().out
    assert marker.stat().st_mtime_ns == before
