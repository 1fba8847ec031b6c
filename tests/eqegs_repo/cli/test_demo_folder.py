"""``eqegs demo`` without a folder writes under the user's cache folder, never the current one,
and says where (docs/getting-started.md)."""
from eqegs_repo.cli.main import main


def test_demo_without_a_folder_writes_in_the_user_cache_and_says_where(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("EQEGS_CACHE_DIR", raising=False)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "xdg" / "eqegs_repo" / "demo"
    assert f"no folder given: the demo goes to {folder}" in out
    assert (folder / "UserData" / "u0000000" / "EQEGS" / "2025A1234" / "S001" / "train_integrated.json").is_file()
    assert (folder / "report.md").is_file() and (folder / "cache").is_dir()
    assert list(work.iterdir()) == []  # nothing in the current folder
