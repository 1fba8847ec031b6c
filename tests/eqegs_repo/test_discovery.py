"""What a user discovers: signatures, tab completion of steps and of attributes, the EQEGS folder
as a repository URL."""
import inspect
import json
import subprocess
import sys
import textwrap

import pytest

from eqegs_repo import Proposal, Repository, Sample, batch
from eqegs_repo import watch as watching
from eqegs_repo.step_table import names as step_names

STEPS = step_names()
from spice import ResolvedView, TypeView
from tests.helpers import ROOT
from tests.helpers.treeutil import local_fs, write_tree

PUBLIC_CLASSES = (Repository, Proposal, Sample, ResolvedView, TypeView)


def public_calls(cls):
    for name, member in vars(cls).items():
        if not name.startswith("_") and callable(member):
            yield name, member
    for base in cls.__mro__[1:]:
        if base.__module__.startswith(("eqegs_repo", "spice")):
            yield from ((n, m) for n, m in vars(base).items() if not n.startswith("_") and callable(m)
                        and n not in vars(cls))


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=lambda c: c.__name__)
def test_every_public_call_has_typed_parameters_and_a_return_type(cls):
    untyped = []
    for name, call in public_calls(cls):
        signature = inspect.signature(call)
        for parameter in list(signature.parameters.values())[1:]:
            if parameter.annotation is inspect.Parameter.empty:
                untyped.append(f"{cls.__name__}.{name}({parameter.name})")
        if signature.return_annotation is inspect.Signature.empty:
            untyped.append(f"{cls.__name__}.{name} -> ?")
    assert not untyped, untyped


def test_reanalyze_and_watch_show_the_parameters_of_the_batch_functions():
    for method, function in ((Repository.reanalyze, batch.reanalyze), (Repository.watch, watching.watch)):
        own = list(inspect.signature(method).parameters.values())[1:]
        theirs = list(inspect.signature(function).parameters.values())[1:]
        assert [(p.name, p.kind, p.default) for p in own] == [(p.name, p.kind, p.default) for p in theirs]
        assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in own)
    steps = inspect.signature(Sample.cook).parameters["step"]
    assert steps.default == "e_spectrum_and_isf" and set(STEPS) <= set(str(steps.annotation).split("'"))


@pytest.fixture(scope="module")
def eqegs_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("discovery") / "EQEGS"
    write_tree(local_fs(), str(root), {"2025A1234": ["S001", "S002"], "2025B5678": ["S001"]})
    return root


def test_the_eqegs_folder_itself_is_a_repository_url(eqegs_folder):
    for url in (str(eqegs_folder), f"{eqegs_folder}/"):
        repo = Repository(url, cache_url=False)
        assert repo.keys() == ["2025A1234", "2025B5678"] and repo["2025A1234"].keys() == ["S001", "S002"]
        assert repo.url == f"{eqegs_folder}/{{proposal}}/{{sample}}"
    same = Repository(f"{eqegs_folder}/{{proposal}}/{{sample}}", cache_url=False)
    assert same.keys() == repo.keys() and same.url == repo.url


def test_dir_shows_the_calls_of_a_user_and_internals_stay_reachable(eqegs_folder):
    repo = Repository(str(eqegs_folder), cache_url=False)
    proposal, sample = repo.p2025A1234, repo.p2025A1234.S001
    assert set(dir(repo)) == {"all", "cache", "keys", "reanalyze", "refresh", "root", "spice", "table",
                              "url", "watch", "p2025A1234", "p2025B5678"}
    assert set(dir(proposal)) == {"all", "handle", "key", "keys", "path", "refresh", "repository", "spice",
                                  "table", "S001", "S002"}
    assert {"cook", "export", "raw", "spice", "cache_status", "info"} <= set(dir(sample))
    assert not {"fs", "layout", "explain_empty", "pattern", "config"} & (set(dir(repo)) | set(dir(sample)))
    assert repo.fs is sample.fs and repo.explain_empty() is None and sample.layout is repo.layout
    view = sample.spice
    assert {"q_integration", "source", "status", "text"} <= set(dir(view))
    assert {"bg_sample_id", "source", "unit"} <= set(dir(view.q_integration))


IPYTHON_SESSION = """
import json, sys
from IPython.core.completer import provisionalcompleter
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
ran = shell.run_cell(f"from eqegs_repo import Repository\\nrepo = Repository({sys.argv[1]!r}, cache_url=False)\\n"
                     "s = repo.p2025A1234.S001", store_history=False)
assert ran.success, ran
out = {}
for jedi in (True, False):
    shell.Completer.use_jedi = jedi
    for line in sys.argv[2:]:
        with provisionalcompleter():
            out[f"{jedi} {line}"] = sorted({c.text.lstrip(".") for c in shell.Completer.completions(line, len(line))})
print(json.dumps(out))
"""


def ipython_completions(folder, lines):
    pytest.importorskip("IPython")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(IPYTHON_SESSION), str(folder), *lines],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_ipython_completes_step_names_and_user_attributes_with_jedi_on_and_off(eqegs_folder):
    lines = ['s.cook("', "s.cook('q", 's.export(step="e', 'repo.reanalyze(steps=["', "repo.", "s.c"]
    found = ipython_completions(eqegs_folder, lines)
    for jedi in (True, False):
        assert found[f"{jedi} s.cook(\""] == sorted(STEPS)
        assert found[f"{jedi} s.cook('q"] == ["q_integration"]
        assert found[f"{jedi} s.export(step=\"e"] == ["e_spectrum_and_isf"]
        assert found[f"{jedi} repo.reanalyze(steps=[\""] == sorted(STEPS)
        assert set(found[f"{jedi} repo."]) == {"all", "cache", "keys", "reanalyze", "refresh", "root", "spice",
                                               "table", "url", "watch", "p2025A1234", "p2025B5678"}
        assert set(found[f"{jedi} s.c"]) == {"cache_status", "cook", "cooked"}
