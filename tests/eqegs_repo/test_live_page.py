"""The live view of a watch (eqegs_repo/live_page.py): the page and the notebook widget, called as
a watch calls them (``view(history, sample, row)``) with a synthetic history and a cooked sample."""
import html.parser
import os

import numpy as np
import pandas as pd
import pytest

from eqegs_repo import live_page
from eqegs_repo.cli.main import main
from eqegs_repo.errors import BadInput
from eqegs_repo.live_page import HISTORY_COLUMNS, SHOWN, LivePage
from tests.helpers.cooktrees import PROPOSAL, seeded_tree

HOSTILE = "S<script>alert(1)</script>&\x1b[31m\n'\""


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A cooked sample of a small synthetic tree (its E-spectrum result in the cache)."""
    repo = seeded_tree(tmp_path_factory.mktemp("live") / "tree", n_frames=128)
    cooked = repo[PROPOSAL]["S001"]
    cooked.cook("e_spectrum_and_isf")
    return cooked


def history_row(sample="S001", growth=0, status="ok", proposal=PROPOSAL, **values):
    """A history row of the ``growth``-th cook of a growing sample (tau 100 + growth ns)."""
    row = {"time": (pd.Timestamp("2026-01-01T10:00") + pd.Timedelta(minutes=growth)).isoformat(),
           "proposal": proposal, "sample": sample, "n_trains": 10 * (growth + 1),
           "exposure_s": 60.0 * (growth + 1), "tau_ns": 100.0 + growth, "tau_err_ns": 20.0 / np.sqrt(growth + 1),
           "f_q": 0.7, "f_q_err": 0.05, "status": status, "fingerprint": f"f{growth}",
           "projected_exposure_s": 960.0}
    row.update(values)
    return row


class Cells(html.parser.HTMLParser):
    """The text of each cell of the page's table, row by row, and the ``src`` of its images."""

    def __init__(self, text):
        super().__init__()
        self.rows, self.images, self.cell, self.links = [], [], None, []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = ""
        elif tag == "img":
            self.images.append(attrs["src"])
        for name in ("href", "src"):
            if name in attrs:
                self.links.append(attrs[name])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.rows[-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def shown(path):
    """{(proposal, sample): {column: text}} of the page's table, and the parsed page."""
    cells = Cells(path.read_text())
    header, *rows = cells.rows
    assert header == list(SHOWN)
    return {(r[0], r[1]): dict(zip(header, r)) for r in rows}, cells


def test_the_page_shows_the_newest_numbers_after_each_call(sample, tmp_path):
    page = LivePage(tmp_path / "live.html", refresh_s=7)
    rows = []
    for growth in range(3):
        rows.append(history_row("S10", growth, tau_ns=50.0 + growth))
        rows.append(history_row("S001", growth))
        page(pd.DataFrame(rows), sample, rows[-1])
        table, cells = shown(tmp_path / "live.html")
        assert list(table) == [(PROPOSAL, "S001"), (PROPOSAL, "S10")]  # natural order, one row each
        newest = table[(PROPOSAL, "S001")]
        assert newest["tau"] == ["100 ± 20 ns", "101 ± 14 ns", "102 ± 12 ns"][growth]  # 20 / sqrt(growth + 1)
        assert newest["exposure (s)"] == f"{60 * (growth + 1):g}" and newest["trains"] == str(10 * (growth + 1))
        assert table[(PROPOSAL, "S10")]["tau"].startswith(f"{50 + growth}")
        assert newest["f_q"] == "0.700 ± 0.050" and newest["projected exposure (s)"] == "960"
        assert newest["updated"] == f"2026-01-01 10:0{growth}:00" and newest["status"] == "ok"
        assert len(cells.images) == 2 and all(src.startswith("data:image/png;base64,") for src in cells.images)
        assert all(link.startswith("data:") for link in cells.links)  # nothing asked of a server
    text = (tmp_path / "live.html").read_text()
    assert "<meta http-equiv='refresh' content='7'>" in text
    assert os.listdir(tmp_path) == ["live.html"]


def test_rows_without_a_fit_show_a_dash_and_no_figure(tmp_path):
    page = LivePage(tmp_path / "live.html")
    row = history_row(status="failed", tau_ns=np.nan, tau_err_ns=np.nan, f_q=None, projected_exposure_s=np.nan)
    page(pd.DataFrame([row]), None, row)
    table, cells = shown(tmp_path / "live.html")
    assert table[(PROPOSAL, "S001")]["tau"] == "–" and table[(PROPOSAL, "S001")]["projected exposure (s)"] == "–"
    assert not cells.images and "tau against exposure not drawn: figures.tau_versus_exposure: no row" in \
        (tmp_path / "live.html").read_text()


def test_hostile_names_are_escaped(sample, tmp_path):
    page = LivePage(tmp_path / "live.html", title="<b>beam</b>")
    rows = [history_row(HOSTILE, proposal="P<i>&"), history_row("S001")]
    page(pd.DataFrame(rows), sample, rows[-1])
    text = (tmp_path / "live.html").read_text()
    assert "<script>" not in text and "<i>" not in text and "<b>" not in text and "\x1b" not in text
    table, _ = shown(tmp_path / "live.html")
    assert ("P<i>&", "S<script>alert(1)</script>&\\x1b[31m\\n'\"") in table  # shown as text, escapes visible


def test_the_page_is_replaced_whole_or_not_at_all(sample, tmp_path, monkeypatch):
    path = tmp_path / "live.html"
    page = LivePage(path)
    first = [history_row()]
    page(pd.DataFrame(first), sample, first[0])
    before = path.read_bytes()
    newer = first + [history_row(growth=1)]
    with pytest.raises(BadInput, match="history lacks columns \\['projected_exposure_s'\\]"):
        page(pd.DataFrame(newer).drop(columns="projected_exposure_s"), sample, newer[-1])
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["live.html"]

    def full_disk(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(live_page.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        page(pd.DataFrame(newer), sample, newer[-1])
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["live.html"]
    monkeypatch.undo()

    def broken_isf(*args, **kwargs):
        raise RuntimeError("renderer gone")

    monkeypatch.setattr(live_page.figures, "isf", broken_isf)
    newest = newer + [history_row(growth=2)]
    page(pd.DataFrame(newest), sample, newest[-1])  # a figure that fails never hides the numbers
    table, cells = shown(path)
    assert table[(PROPOSAL, "S001")]["tau"].startswith("102") and len(cells.images) == 1
    assert "ISF not drawn: renderer gone" in path.read_text()


class NotCooked:
    """A sample whose E-spectrum result is not in the cache: the view must not cook it."""

    def cache_status(self, **overrides):
        return {"e_spectrum_and_isf": "stale"}

    def cook(self, *args, **kwargs):
        raise AssertionError("the live view cooked a sample")


class Unasked:
    """A sample the view must not ask anything."""

    def __getattr__(self, name):
        raise AssertionError(f"the live view asked the sample for {name}")


def test_the_isf_is_drawn_from_the_cache_only(sample, tmp_path):
    page = LivePage(tmp_path / "live.html")
    rows = [history_row("S001"), history_row("S002")]
    page(pd.DataFrame(rows), NotCooked(), rows[-1])
    assert len(shown(tmp_path / "live.html")[1].images) == 1  # tau against exposure only
    page(pd.DataFrame(rows), sample, rows[0])
    page(pd.DataFrame(rows), Unasked(), rows[0])  # the same fingerprint: the ISF shown is kept
    failed = rows + [history_row("S001", 1, status="failed", tau_ns=np.nan)]
    page(pd.DataFrame(failed), NotCooked(), failed[-1])  # the last ISF drawn of S001 stays
    text = (tmp_path / "live.html").read_text()
    assert len(Cells(text).images) == 2 and "ISF of 2025A1234/S001" in text


@pytest.mark.parametrize("arguments, message", [
    ({"refresh_s": 0}, "refresh_s must be a number of seconds from 1 to 86400, got 0"),
    ({"refresh_s": "5"}, "refresh_s must be a number"),
    ({"path": "missing/live.html"}, "its folder .*missing does not exist"),
    ({"path": "."}, "is a folder; expected the path of an HTML file"),
])
def test_bad_page_arguments_are_named(tmp_path, monkeypatch, arguments, message):
    monkeypatch.chdir(tmp_path)
    arguments = {"path": "live.html", **arguments}
    with pytest.raises(BadInput, match=message):
        LivePage(arguments.pop("path"), **arguments)


def test_the_widget_updates_its_children(sample):
    pytest.importorskip("ipywidgets", reason="the live extra (ipywidgets) is not installed")
    widget = live_page.LiveWidget(title="beam <time>")
    assert [child for child in widget.box.children] == [widget.heading, widget.table, widget.figures]
    assert "&lt;time&gt;" in widget.heading.value and widget.table.value == ""
    rows = [history_row()]
    widget(pd.DataFrame(rows), sample, rows[-1])
    assert "100 ± 20 ns" in widget.table.value and widget.figures.value.count("<img") == 2
    rows.append(history_row(growth=1))
    widget(pd.DataFrame(rows), sample, rows[-1])
    assert "101 ± 14 ns" in widget.table.value and "100 ± 20 ns" not in widget.table.value
    assert "10:01:00" in widget.heading.value
    assert "application/vnd.jupyter.widget-view+json" in widget._repr_mimebundle_()


def test_eqegs_watch_live_page_passes_the_page_to_watch(sample, tmp_path, monkeypatch, capsys):
    from eqegs_repo import watch

    calls = []
    monkeypatch.setattr(watch, "watch", lambda repo, **kwargs: calls.append(kwargs) or [])
    url = str(tmp_path / "empty")
    os.mkdir(url)
    assert main(["watch", url, "--live-page", str(tmp_path / "live.html"), "--set", "q_min=11"]) == 0
    show_projection, page = calls[0]["on_update"].callbacks  # the projection printed, then the page
    assert isinstance(page, LivePage) and page.path == str(tmp_path / "live.html")
    assert page.overrides == {"q_min": 11} and page.refresh_s == 5
    assert f"live page: {tmp_path / 'live.html'}" in capsys.readouterr().err
    assert main(["watch", url]) == 0  # without the option: the projection only
    assert not any(isinstance(c, LivePage) for c in calls[1]["on_update"].callbacks)
    assert main(["watch", url, "--live-page", str(tmp_path / "nowhere" / "live.html")]) == 1
    assert len(calls) == 2 and "nowhere does not exist" in capsys.readouterr().err



def test_tau_versus_exposure_draws_each_sample_in_order_of_exposure():
    from eqegs_repo import figures

    rows = [history_row("S2", 1), history_row("S2", 0), history_row("S2", 2, tau_ns=np.nan),
            history_row("S\x1b1", 0, tau_ns=7.0)]
    ax, = figures.tau_versus_exposure(pd.DataFrame(rows)).axes
    first, second = ax.containers
    np.testing.assert_array_equal(first.lines[0].get_xdata(), [60.0, 120.0])  # sorted, the unfitted row left out
    np.testing.assert_array_equal(first.lines[0].get_ydata(), [100.0, 101.0])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"{PROPOSAL}/S2", f"{PROPOSAL}/S\\x1b1"]
    assert second.lines[0].get_ydata().tolist() == [7.0] and ax.get_xlabel() == "exposure (s)"
    with pytest.raises(BadInput, match="lacks columns \\['tau_err_ns'\\]"):
        figures.tau_versus_exposure(pd.DataFrame(rows).drop(columns="tau_err_ns"))


def test_without_its_extras_the_widget_names_live_and_the_page_keeps_its_table(sample, tmp_path, monkeypatch):
    from eqegs_repo.errors import MissingExtra
    from tests.eqegs_repo.test_extras import hide

    hide(monkeypatch, "ipywidgets")
    with pytest.raises(MissingExtra, match=r'the live notebook widget needs ipywidgets.*eqegs_repo\[live\]'):
        live_page.LiveWidget()
    hide(monkeypatch, "matplotlib")
    rows = [history_row()]
    LivePage(tmp_path / "live.html")(pd.DataFrame(rows), sample, rows[-1])
    table, cells = shown(tmp_path / "live.html")
    assert table[(PROPOSAL, "S001")]["tau"] == "100 ± 20 ns" and not cells.images
    assert (tmp_path / "live.html").read_text().count('eqegs_repo[plot]') == 2  # each figure says why
