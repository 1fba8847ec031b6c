"""The command line as a new user meets it: every argument explained, options that never take a
positional's place, the closest name for a mistyped command, plain-text help, errors in the
command's own words, values written as ``value ± error``, and every view within 120 columns."""
import argparse
import contextlib
import io
import re
import subprocess
import sys

import pytest

from eqegs_repo.cli.main import build_parser, main
from eqegs_repo.measured import with_error
from eqegs_repo.simulate import synthetic

WIDTH = 120
PLACEHOLDER = "/home/a-user/eqegs-demo"  # a folder name of 23 characters stands for the tree's
COMMANDS = ["ls", "info", "cook", "demo", "spice", "reanalyze", "watch"]


def run(*words):
    """(exit status, stdout, stderr) of ``eqegs words...``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(words))
        except SystemExit as exc:
            status = exc.code
    return status, out.getvalue(), err.getvalue()


def parsers(parser, path=("eqegs",)):
    """(command words, parser) of the parser and of every sub-command parser below it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, path + (name,))


def test_every_argument_and_option_of_every_command_has_a_help_text():
    missing = []
    for path, parser in parsers(build_parser()):
        for action in parser._actions:
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.metavar or action.dest}")
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{' '.join(path)} {choice.dest}" for choice in action._choices_actions
                            if not choice.help]
    assert missing == []
    assert len(list(parsers(build_parser()))) > 15  # the walk reaches the spice sub-commands


def test_help_texts_are_plain_text_and_the_top_level_shows_examples_and_the_docs():
    for path, parser in parsers(build_parser()):
        text = parser.format_help()
        assert "``" not in text and ":func:" not in text and ":class:" not in text, " ".join(path)
    text = build_parser().format_help()
    assert "examples:" in text and "eqegs cook URL 2025A1234 S001" in text
    assert "docs/" in text and "mkdocs" in text


def test_help_imports_no_heavy_module():
    code = ("import sys\nfrom eqegs_repo.cli.main import build_parser\nbuild_parser().format_help()\n"
            "print(sorted(m for m in ('numpy', 'pandas', 'xarray', 'dask', 'matplotlib', 'scipy', 'fsspec')"
            " if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("words, wanted", [(["cok"], "cook"), (["reanalyse"], "reanalyze"),
                                           (["spice", "shwo"], "show"), (["spice", "tpyes"], "types"),
                                           (["cook", "/x", "P", "S", "--step", "q_integratoin"], "q_integration")])
def test_a_mistyped_command_or_choice_names_the_closest(words, wanted):
    status, _, err = run(*words)
    assert status == 2 and f"did you mean {wanted!r}?" in err


def test_an_option_never_swallows_the_url():
    parser = build_parser()
    args = parser.parse_args(["reanalyze", "--samples", "S001", "/data/EQEGS", "--proposals", "2025A*,2025B*",
                              "--steps", "q_integration", "--where", "roi.x0=1,q_range.q_max=[1, 2]",
                              "--samples", "S00[7-9]"])
    assert args.url == "/data/EQEGS"
    assert args.samples == ["S001", "S00[7-9]"] and args.proposals == ["2025A*", "2025B*"]
    assert args.steps == ["q_integration"] and args.where == ["roi.x0=1", "q_range.q_max=[1, 2]"]
    watch = parser.parse_args(["watch", "--steps", "reconstruction,q_integration", "/data/EQEGS"])
    assert watch.url == "/data/EQEGS" and watch.steps == ["reconstruction", "q_integration"]
    seed = parser.parse_args(["spice", "seed", "--anchor", "S001", "/data/EQEGS", "2025A1234", "roi", "x0=1",
                              "--comment", "why", "y0=2"])
    assert (seed.url, seed.proposal, seed.type, seed.anchor) == ("/data/EQEGS", "2025A1234", "roi", "S001")
    assert seed.values == [("x0", "1"), ("y0", "2")]
    documented = parser.parse_args(["spice", "seed", "/data/EQEGS", "2025A1234", "roi", "--anchor", "S010",
                                    "x0=150", "y0=280"])  # the form docs/spice.md shows
    assert documented.anchor == "S010" and documented.values == [("x0", "150"), ("y0", "280")]
    dashboard = parser.parse_args(["reanalyze", "--dashboard", "/data/EQEGS"])
    assert dashboard.url == "/data/EQEGS" and dashboard.dashboard is True


def test_an_unfilled_url_field_is_explained_with_the_cli_option(tmp_path):
    status, _, err = run("ls", f"{tmp_path}/{{account}}/EQEGS/{{proposal}}/{{sample}}")
    assert status == 1 and "-f account=..." in err and "Repository(" not in err
    status, _, err = run("ls", str(tmp_path), "-f", "acount=u1")
    assert status == 1 and "-f acount=... names no field" in err


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(the demo's output, its EQEGS folder, its base folder)."""
    base = tmp_path_factory.mktemp("demo")
    status, out, err = run("demo", str(base))
    assert status == 0, err
    return out, str(synthetic.eqegs_root(base)), str(base)


def longest_line(text, base):
    return max(len(line.replace(base, PLACEHOLDER)) for line in text.splitlines())


@pytest.mark.parametrize("words", [[], ["ls", "{root}"], ["ls", "{root}", "2025A1234"],
                                   ["info", "{root}", "2025A1234", "S001"],
                                   ["spice", "show", "{root}", "2025A1234"],
                                   ["spice", "show", "{root}", "2025A1234", "S001"],
                                   ["spice", "history", "{root}", "2025A1234", "q_integration"],
                                   ["spice", "types"], ["spice", "types", "e_spectrum"],
                                   ["reanalyze", "{root}", "--workers", "1", "--no-progress"]])
def test_every_view_fits_in_120_columns(demo, words):
    out, root, base = demo
    if words:
        status, out, err = run(*[w.format(root=root) for w in words])
        assert status == 0, err
    assert longest_line(out, base) <= WIDTH, words


def test_spice_types_gives_each_fields_meaning_unit_and_a_header_for_every_column():
    from eqegs_repo.params import types

    status, out, _ = run("spice", "types", "q_range")
    assert status == 0
    header = next(line for line in out.splitlines() if line.startswith("field"))
    rule = out.splitlines()[out.splitlines().index(header) + 1]
    assert header.split() == ["field", "unit", "default", "meaning"] and len(rule.split()) == 4
    flat = " ".join(out.split())
    for row in (r for r in types.schema_rows() if r["type"] == "q_range"):
        assert " ".join(row["doc"].split()) in flat  # the schemas' text, the one docs/physics.md shows
        assert f"{row['field']}  {row['unit']}" in out


def test_values_with_errors_are_written_one_way(demo):
    out, root, _ = demo
    assert " +- " not in out and re.search(r"\d ± \d", out)
    status, cooked, _ = run("cook", root, "2025A1234", "S001")
    assert status == 0
    from eqegs_repo import Repository

    ds = Repository(root + "/{proposal}/{sample}")["2025A1234"]["S001"].cook()
    assert (f"tau = {with_error(ds.tau.item(), ds.tau_error.item(), 'ns')}, "
            f"f_q = {with_error(ds.f_q.item(), ds.f_q_error.item())}," in cooked)
