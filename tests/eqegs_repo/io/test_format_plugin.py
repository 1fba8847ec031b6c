"""The plug-in of docs/formats.md, installed: the page's module and pyproject.toml are built into a
package by pip, installed into a temporary folder, and a fresh Python with that folder on its
path finds the format through its entry point, lists, cooks and opens (``engine="eqegs"``) a
sample in the detector's layout, and ``eqegs inspect`` reads it; without the package the same
folder does not open and inspect says which files no format uses.

Entry points are read once per process, so the installed package is used in a subprocess; pip
builds it offline (``--no-index --no-build-isolation``: setuptools and wheel of the test
environment).
"""
import ast
import json
import os
import re
import subprocess
import sys
import tempfile

import pytest

from eqegs_repo.cli.main import main
from eqegs_repo.io.formats import ENTRY_POINT_GROUP, raw_formats
from eqegs_repo.io.inspection import inspect
from tests.helpers import ROOT

PAGE = ROOT / "docs" / "formats.md"
PYTHON_BLOCK = re.compile(r"^```python(?:[ \t][^\n]*)?\n(.*?)^```", re.S | re.M)
TOML_BLOCK = re.compile(r"^```toml\n(.*?)^```", re.S | re.M)


def page_blocks():
    """``(module, writer, usage, pyproject)``: the code of the page's blocks, in page order."""
    text = PAGE.read_text()
    module, writer, usage = PYTHON_BLOCK.findall(text)
    (pyproject,) = TOML_BLOCK.findall(text)
    return module, writer, usage, pyproject


def code_lines(source):
    """Lines of code of ``source``: no blank line, comment or docstring."""
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node):
            first = node.body[0]
            docstrings |= set(range(first.lineno, first.end_lineno + 1))
    return [line for number, line in enumerate(source.splitlines(), 1)
            if line.strip() and not line.strip().startswith("#") and number not in docstrings]


def test_the_page_s_format_is_at_most_30_lines_of_code():
    module, *_ = page_blocks()
    assert len(code_lines(module)) <= 30, "\n".join(code_lines(module))


CHECK_INSTALLED = r"""
import contextlib, io, json, sys
import numpy as np
import xarray as xr
from eqegs_repo import Repository, inspect
from eqegs_repo.cli.main import main
from eqegs_repo.io.formats import raw_formats
from eqegs_repo.simulate import demo, synthetic

base, dat = sys.argv[1], sys.argv[2]
fmt = raw_formats()["detector-dat"]
repo = Repository(f"{base}/{{proposal}}/{{sample}}", spice_url="memory://plugin", cache_url=f"{base}/cache")
prop = repo["2025A1234"]
demo.seed_spice(prop, synthetic.preset_params("tiny", n_frames=64), (11.0, 13.0), None, n_mc=20)
table = prop.table().set_index("key")
npy, detector = prop["S001"], prop["S002"]
a, b = npy.cook(), detector.cook()
raw, twin = xr.open_dataset(dat, engine="eqegs"), npy.raw
out = io.StringIO()
with contextlib.redirect_stdout(out):
    inspect_status = main(["inspect", dat])
    ls_status = main(["ls", base, "2025A1234"])
print(json.dumps({
    "formats": list(raw_formats()), "module": type(fmt).__module__, "file": sys.modules[type(fmt).__module__].__file__,
    "keys": list(table.index), "problems": list(table["problem"]), "files": dict(detector.info()["files"]),
    "same_result": bool(a.tau.item() == b.tau.item() and a.f_q.item() == b.f_q.item()
                        and np.array_equal(a.isf.values, b.isf.values)),
    "fingerprints": [a.attrs["fingerprint"], b.attrs["fingerprint"]],
    "cache": detector.cache_status(), "engine_counts_equal": bool(np.array_equal(raw.counts.values, twin.counts.values)),
    "engine_velocity_equal": bool(np.array_equal(raw.velocity.values, twin.velocity.values)),
    "inspect_readable": inspect(dat).readable, "inspect_status": inspect_status, "ls_status": ls_status,
    "cli": out.getvalue()}))
"""


def test_the_page_s_package_installs_and_its_format_lists_cooks_and_opens(tmp_path, monkeypatch, capsys):
    pytest.importorskip("setuptools", reason="pip builds the plug-in package with setuptools (test extra)")
    pytest.importorskip("wheel", reason="pip builds the plug-in package's wheel with wheel (test extra)")
    module, writer, _, pyproject = page_blocks()
    package = tmp_path / "eqegs-detector-dat"
    package.mkdir()
    (package / "pyproject.toml").write_text(pyproject)
    (package / "eqegs_detector_dat.py").write_text(module)
    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                          "--no-index", "--quiet", "--target", str(site), str(package)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    (dist_info,) = site.glob("eqegs_detector_dat-*.dist-info")
    assert f"[{ENTRY_POINT_GROUP}]\ndetector-dat = eqegs_detector_dat:FORMAT" in (dist_info / "entry_points.txt").read_text()

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))    # the page's tree goes under tmp_path
    namespace = {}
    exec(compile(writer, f"{PAGE.name}[writer block]", "exec"), namespace)
    base, dat = namespace["base"], namespace["dat"]

    # this process has not got the package: the folder does not open, and inspect says why
    assert "detector-dat" not in raw_formats()
    report = inspect(dat)
    assert not report.readable and "detector-dat" not in [v.name for v in report.verdicts]
    assert "no registered format uses detector.dat, detector.json" in report.notes[0]
    assert main(["inspect", dat]) == 1
    assert "not readable" in capsys.readouterr().out.splitlines()[0]

    # a fresh Python with the package on its path: the entry point brings the format
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, "-c", CHECK_INSTALLED, base, dat], capture_output=True, text=True,
                         env=env, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    found = json.loads(run.stdout.splitlines()[-1])
    assert found["formats"] == [*raw_formats(), "detector-dat"] and found["module"] == "eqegs_detector_dat"
    assert found["file"].startswith(str(site))
    assert found["keys"] == ["S001", "S002"] and found["problems"] == ["", ""]
    assert list(found["files"]) == ["detector.dat", "detector.json"]
    assert found["same_result"] and found["fingerprints"][0] != found["fingerprints"][1]
    assert found["cache"] == {"reconstruction": "fresh", "q_integration": "fresh", "e_spectrum_and_isf": "fresh"}
    assert found["engine_counts_equal"] and found["engine_velocity_equal"]
    assert found["inspect_readable"] and found["inspect_status"] == 0 and found["ls_status"] == 0
    assert f"{dat}: readable as detector-dat\n" in found["cli"]
    assert "  detector-dat  reads it\n" in found["cli"]


def plugin_reason(report):
    return next(v.reason for v in report.verdicts if v.name == "detector-dat")


@pytest.fixture
def page_format(tmp_path, monkeypatch):
    """The page's module run in this process, its format registered (what the entry point does),
    and the page's tree written under ``tmp_path``: ``(namespace of the writer block, format)``."""
    from eqegs_repo.io.formats import register_format, unregister_format

    module, writer, _, _ = page_blocks()
    module_namespace, namespace = {"__name__": "eqegs_detector_dat"}, {}
    exec(compile(module, f"{PAGE.name}[module block]", "exec"), module_namespace)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    exec(compile(writer, f"{PAGE.name}[writer block]", "exec"), namespace)
    fmt = register_format(module_namespace["FORMAT"])
    yield namespace, fmt
    unregister_format(fmt.name)


def test_the_page_s_format_refuses_a_short_data_file_and_a_broken_header_naming_them(page_format):
    from eqegs_repo import Repository

    namespace, _ = page_format
    dat = namespace["dat"]
    with open(f"{dat}/detector.dat", "r+b") as f:
        f.truncate(1000)
    report = inspect(dat)
    assert not report.readable and report.closest == "detector-dat"
    assert plugin_reason(report) == f"{dat}/detector.dat: 1000 bytes, but {dat}/detector.json says 393728"
    prop = Repository(f"{namespace['base']}/{{proposal}}/{{sample}}", spice_url="memory://plugin-bad",
                      cache_url=False)["2025A1234"]
    problems = prop.table().set_index("key")["problem"]
    assert problems["S001"] == "" and problems["S002"] == plugin_reason(report)

    with open(f"{dat}/detector.json", "w") as f:
        json.dump({"modules": 3, "frames": 64, "cols": 16, "dtype": "<u2"}, f)
    assert plugin_reason(inspect(dat)) == f"{dat}/detector.json: not a readable header (KeyError('rows'))"


def test_the_page_s_format_says_which_of_its_files_is_missing(page_format):
    namespace, _ = page_format
    dat = namespace["dat"]
    os.remove(f"{dat}/detector.json")
    report = inspect(dat)
    assert plugin_reason(report) == "no detector.json"
    assert report.closest == "detector-dat" and report.missing == ["detector.json"]
