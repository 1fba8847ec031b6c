"""``eqegs spice`` sub-commands, run through the eqegs parser class with cli_spice.register."""
import io

import fsspec
import pytest

from eqegs_repo.cli import spice as cli_spice
from eqegs_repo.cli.common import Parser
from eqegs_repo.errors import EqegsError
from tests.helpers import treeutil


@pytest.fixture
def run_cli(tmp_path):
    treeutil.write_tree(fsspec.filesystem("file"), str(tmp_path),
                        {"2025A1234": ["S001", "S002", "S010"]})
    parser = Parser(prog="eqegs")
    cli_spice.register(parser.add_subparsers(dest="command", required=True))

    def run(*words):
        args = parser.parse_args(["spice", words[0], str(tmp_path), "2025A1234", *words[1:]])
        out = io.StringIO()
        args.run(args, out=out)
        return out.getvalue()

    run.root = tmp_path
    return run


def test_seed_update_show_history_diff_erase(run_cli):
    assert "revision 1" in run_cli("seed", "roi", "--anchor", "S002", "x0=150", "y0=280",
                                   "x1=224", "y1=328", "--comment", "first look")
    assert "revision 2" in run_cli("update", "roi", "x1=230", "--anchor", "S002")
    run_cli("seed", "q_integration", "--anchor", "", "bg_sample_id=001", "sectors=[[10, 20]]")
    out = run_cli("show", "S010")
    lines = out.splitlines()
    roi = lines.index(next(line for line in lines if line.startswith("roi ")))
    assert "proposal S002 r2" in lines[roi]                 # the group names its record
    x1_line = next(line for line in lines[roi:] if line.split()[:1] == ["x1"])
    assert x1_line.split()[1] == "230"
    assert "[complete]" not in out  # q_range is still missing
    assert [line for line in lines if line.startswith("sp_param ")][0].split()[1] == "defaults:"
    shown = run_cli("show", "S010", "--type", "q_integration")
    assert "bg_sample_id" in shown and " 001 " in shown + " "  # text field kept as typed
    assert "\nroi " not in shown
    history = run_cli("history", "roi")
    assert "superseded" in history and "first look" in history
    diff = run_cli("diff", "S001", "S010")
    assert "x1" in diff and "230" in diff and "null" in diff
    assert "revision 3" in run_cli("erase", "roi", "--anchor", "S002")
    assert "(erased)" in run_cli("history", "roi", "--anchor", "S002")
    current = run_cli("show")
    assert "erased" in current and "q_integration" in current


def test_import_table_refuses_a_bad_table_whole_with_and_without_dry_run(run_cli):
    table = run_cli.root / "data_table.csv"
    table.write_text("sample_name, velocity, angle, comment\n001,2,0,ok\n002,2000000,0\n"
                     "010,\u2460,0\n1,3,0,S001 again\n", encoding="utf-8")
    messages = []
    for dry_run in (("--dry-run",), ()):
        with pytest.raises(EqegsError) as caught:
            run_cli("import-table", str(table), *dry_run)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "spice: data table" in messages[0] and "nothing was written" in messages[0]
    for expected in ("line 3, column velocity: found '2000000'",
                     "line 4, column velocity: found '\u2460'",
                     ("line 5, column sample_name: found '1'; expected one row per sample; "
                      "line 2 ('001') names sample S001 too")):
        assert expected in messages[0]
    assert "(no records)" in run_cli("show")


def test_repository_scope_and_record_diff(run_cli):
    first = run_cli("seed", "q_range", "--scope", "repository", "--anchor", "",
                    "q_min=10", "q_max=14").split("uuid ")[1].strip()
    second = run_cli("update", "q_range", "--scope", "repository", "--anchor", "2025A1234",
                     "q_max=15").split("uuid ")[1].strip()
    assert "15" in run_cli("diff", first[:8], second[:8], "--scope", "repository")
    out = run_cli("show", "S001")
    assert "repository 2025A1234 r1" in out and "[complete]" in out


def test_import_table_and_errors(run_cli):
    table = run_cli.root / "data_table.csv"
    table.write_text("sample_name, velocity, angle, comment\n001,2,0,ok\n5,1,0,none\n")
    assert "would write" in run_cli("import-table", str(table), "--dry-run")
    out = run_cli("import-table", str(table))
    assert "written r1" in out and "no matching sample" in out
    with pytest.raises(EqegsError, match=r"q_range.q_min = -1.0 .*number >= 0"):
        run_cli("seed", "q_range", "--anchor", "S001", "q_min=-1")
    with pytest.raises(EqegsError, match="no spice type 'roj' \\(closest: roi\\)"):
        run_cli("seed", "roj", "--anchor", "S001", "x0=1")
    with pytest.raises(EqegsError, match="nothing to erase"):
        run_cli("erase", "roi", "--anchor", "S001")
    with pytest.raises(SystemExit):
        run_cli("seed", "roi", "--anchor", "S001", "x0")  # not FIELD=VALUE


def test_types_lists_fields_units_and_ranges():
    parser = Parser(prog="eqegs")
    cli_spice.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["spice", "types", "q_range"])
    out = io.StringIO()
    args.run(args, out=out)
    assert "nm^-1" in out.getvalue() and "required" in out.getvalue()


def test_writing_commands_refuse_records_that_would_end_with_the_command(tmp_path, capsys):
    """issue 20, M10: ``spice_url: memory://`` -- ``eqegs spice seed`` once said "seeded ...
    revision 1" and the record vanished at exit."""
    from eqegs_repo import Repository
    from eqegs_repo.cli.main import main
    from eqegs_repo.io import config

    treeutil.write_tree(fsspec.filesystem("file"), str(tmp_path), {"2025A1234": ["S001", "S002"]})
    table = tmp_path / "data_table.csv"
    table.write_text("sample_name, velocity, angle, comment\n001,2,0,ok\n")
    root = [str(tmp_path), "2025A1234"]
    memory = ["--spice-url", "memory://kept"]
    writes = [["seed", *root, "roi", "--anchor", "S001", "x0=1", *memory],
              ["update", *root, "roi", "--anchor", "S001", "x0=2", *memory],
              ["erase", *root, "roi", "--anchor", "S001", *memory],
              ["import-table", *root, str(table), *memory]]
    for words in writes:
        assert main(["spice", *words]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"eqegs: error: eqegs spice {words[0]}: expected a spice "
                                                       "folder that lasts, found memory://kept")
        assert "(--spice-url): records kept in memory end with this command, so nothing was written" in err
    assert main(["spice", "import-table", *root, str(table), "--dry-run", *memory]) == 0   # writes nothing
    assert main(["spice", "history", *root, "roi", *memory]) == 0                          # reading is fine
    capsys.readouterr()
    assert not Repository(str(tmp_path), spice_url="memory://kept")["2025A1234"].spice.history("roi")
    # the same from the tree's eqegs.yaml, named in the message
    config.write_config(str(tmp_path), {"spice_url": "memory://from-the-file"})
    assert main(["spice", "seed", *root, "roi", "--anchor", "S001", "x0=1"]) == 1
    assert f"found memory://from-the-file (spice_url in {tmp_path}/eqegs.yaml): records" in capsys.readouterr().err
    # Python keeps memory:// for a session
    repo = Repository(str(tmp_path))
    assert repo["2025A1234"].spice.seed("roi", "S001", x0=1, y0=1, x1=9, y1=9).revision == 1
    assert repo["2025A1234"]["S002"].spice["roi"]["x0"] == 1


def test_import_table_conditions_from_comments(run_cli):
    table = run_cli.root / "data_table.csv"
    table.write_text("001,1,0,T=25C P=1bar\n002,1,0,T=300\n")
    with pytest.raises(EqegsError, match=r"line 2, column comment: found 'T=300'; expected temperature"):
        run_cli("import-table", str(table), "--conditions-from-comments")
    table.write_text("001,1,0,T=25C P=1bar\n002,1,0,T=300K\n")
    assert "written r1" in run_cli("import-table", str(table))           # without the flag: calibration only
    assert "conditions            defaults: temperature null" in run_cli("show", "S002")
    out = run_cli("import-table", str(table), "--conditions-from-comments")
    assert "conditions line 1 S001" in out and "conditions line 2 S002" in out and "written r1" in out
    shown = run_cli("show", "S002", "--type", "conditions")
    assert "temperature" in shown and "300" in shown
