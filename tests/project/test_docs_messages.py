"""The error messages the docs quote are the messages the code gives.

Each case names a page, the message as the page quotes it (``...`` stands for any text, as on the
pages) and a call that makes the message; the quote must be on the page (line breaks of the page
ignored) and must match the message.
"""
import re

import numpy as np
import pytest

from eqegs_repo import Repository, errors
from eqegs_repo.cli.main import main
from eqegs_repo.io.formats.npy import NpyFile
from eqegs_repo.kernels import rules
from eqegs_repo.simulate import synthetic
from tests.helpers import ROOT


def page_text(page):
    return " ".join((ROOT / "docs" / page).read_text().split())


def quote_pattern(quote):
    """A regex of a quote: ``...`` is any text, ``<...>`` a placeholder such as ``<folder>``."""
    parts = re.split(r"(\.\.\.|<[a-z ]+>)", quote)
    return "".join(".*" if part == "..." or part.startswith("<") else re.escape(part) for part in parts)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("messages")
    written = synthetic.write_tree(base, proposals=("2025A1234",), preset="tiny", seed=1,
                                   samples_per_proposal=3, n_frames=64)
    return base, written


def message_of(call):
    try:
        call()
    except Exception as exc:  # the message is the point
        return str(exc)
    raise AssertionError(f"{call} raised nothing")


def cli_message(argv, capsys):
    assert main(argv) != 0
    return capsys.readouterr().err


def missing_matplotlib(monkeypatch):
    def not_installed(name):
        raise ModuleNotFoundError(f"No module named {name.split('.')[0]!r}", name=name.split(".")[0])

    monkeypatch.setattr(errors.importlib, "import_module", not_installed)
    return message_of(lambda: errors.optional_import("matplotlib.figure", "drawing figures"))


def truncated_sensor_file(tmp_path):
    folder = tmp_path / "S003" / "train_integrated"
    folder.mkdir(parents=True)
    path = folder / "sensor_1.npy"
    np.save(path, np.zeros((64, 24, 16), np.uint32))
    path.write_bytes(path.read_bytes()[:65664])
    import fsspec

    return message_of(lambda: NpyFile(fsspec.filesystem("file"), str(path)))


def repository(tree):
    base, written = tree
    return Repository(written.url(), spice_url="memory://", cache_url=False)


CASES = {
    "missing extra": (["getting-started.md", "tutorial.md"],
                      'drawing figures needs matplotlib, which is not installed: pip install "eqegs_repo[plot]"',
                      lambda tree, tmp_path, capsys, monkeypatch: missing_matplotlib(monkeypatch)),
    "truncated file": (["getting-started.md"],
                       ".../S003/train_integrated/sensor_1.npy: truncated: the header says shape (64, 24, 16) "
                       "of uint32, i.e. 98432 bytes, but the file has 65664 bytes",
                       lambda tree, tmp_path, capsys, monkeypatch: truncated_sensor_file(tmp_path)),
    "no sample": (["getting-started.md"], "no sample 'S01'; closest: 'S001'",
                  lambda tree, *_: message_of(lambda: repository(tree)["2025A1234"]["S01"])),
    "wrong folder": (["getting-started.md"],
                     "no proposals in .../EQEGS/2025A1234: expected {proposal}/{sample}/train_integrated.json "
                     "2 levels below it, but it holds sample folders 1 level(s) down (...); the folder "
                     "holding the proposals is probably .../EQEGS",
                     lambda tree, tmp_path, capsys, monkeypatch: cli_message(
                         ["ls", f"{tree[1].url().split('/{proposal}')[0]}/2025A1234"], capsys)),
    "spice type": (["getting-started.md"], "closest: q_range",
                   lambda tree, tmp_path, capsys, monkeypatch: cli_message(
                       ["spice", "show", tree[1].url().split("/{proposal}")[0], "2025A1234", "S001", "--type",
                        "q_rnge"], capsys)),
    "empty selection": (["reanalysis.md"],
                        "no sample of the chosen proposals matches 'X*' (there are 4: S000_noise, S001, ...)",
                        lambda tree, *_: message_of(lambda: repository(tree).reanalyze(samples="X*"))),
    "override": (["reanalysis.md"], "unknown parameter 'q_mn' in cook overrides (closest: q_min, ...)",
                 lambda tree, *_: message_of(lambda: repository(tree).reanalyze(overrides={"q_mn": 1}))),
    "q range": (["kernels.md"], "q_min = 13.0 must be smaller than q_max = 12.0 (0 <= q_min < q_max, nm^-1)",
                lambda *_: "; ".join(rules.q_range_problems(13.0, 12.0))),
    "roi": (["kernels.md"], "roi.x1 = 20 must be >= roi.x0 = 30 (end corners are inclusive)",
            lambda *_: "; ".join(rules.roi_problems(30, 0, 20, 10))),
    "roi outside": (["kernels.md"], "roi.y0 = 70 is outside the image: rows run from 0 to 63",
                    lambda *_: "; ".join(rules.roi_problems(0, 70, 10, 80, image_shape=(64, 48)))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_quoted_message_is_on_its_page_and_is_what_the_code_says(case, tree, tmp_path, capsys, monkeypatch):
    pages, quote, make = CASES[case]
    for page in pages:
        assert quote in page_text(page), f"docs/{page} no longer quotes {quote!r}"
    message = make(tree, tmp_path, capsys, monkeypatch)
    assert re.search(quote_pattern(quote), message, re.S), f"docs quote {quote!r}; the code says {message!r}"


def test_a_stale_quote_is_caught():
    assert re.search(quote_pattern("no sample 'S01'; closest: ..."), "no sample 'S01'; closest: 'S001'")
    assert not re.search(quote_pattern("no sample of the chosen proposals matches 'X*' (closest: ...)"),
                         "no sample of the chosen proposals matches 'X*' (there are 4: S000_noise, S001)")
