"""The live view of a watch: a page that reloads itself, and the same in a notebook
(docs/reanalysis.md#live-view).

:class:`LivePage` and :class:`LiveWidget` are callables ``view(history, sample, row)``, the
``on_update`` of a watch: after each row of the history (one per cook of a growing sample) they
show the proposal's samples, each with its latest tau ± sigma, f_q ± sigma, exposure, trains,
status and the exposure projected to reach the target error of tau; the ISF of each sample (the
newest drawn on each call, the others kept from their last call) and tau against exposure from
the history (:func:`eqegs_repo.figures.tau_versus_exposure`).

The page is one static HTML file, rewritten atomically (written beside, then renamed over the
old one), with its figures inline (PNG as data URLs) and a ``<meta http-equiv="refresh">``: it
needs no server and no open port, asks for nothing outside itself, and works from ``file://``,
so it can sit on the beamline's network filesystem and be opened from any machine that mounts it.

The ISF of a sample is drawn only when the result cache holds its E-spectrum result for the
current spice and ``overrides`` (a cheap read): the view never cooks. Every name shown comes from
folder names and is escaped (control characters as ``\\x1b``, then HTML).
"""
import html
import math
import os
import tempfile

import pandas as pd

from eqegs_repo import figures
from eqegs_repo.errors import BadInput, is_number, optional_import
from eqegs_repo.measured import with_error
from eqegs_repo.naming import natural_key
from spice.display import visible

HISTORY_COLUMNS = ("time", "proposal", "sample", "n_trains", "exposure_s", "tau_ns", "tau_err_ns", "f_q",
                   "f_q_err", "status", "fingerprint", "projected_exposure_s")
"""The columns of a watch history (one row per cook; seconds, ns)."""
SHOWN = ("proposal", "sample", "tau", "f_q", "q (nm^-1)", "exposure (s)", "trains", "status", "checks",
         "projected exposure (s)", "updated")
"""The columns of the live table: the latest row of each sample (``q``: the weighted q of its
result; ``checks``: the physics checks it failed, from a history that records them)."""
FITTED = ("ok", "up-to-date")
"""Row statuses after which the sample's ISF is drawn."""
MIN_REFRESH_S = 1
NOT_KNOWN = "–"


def latest_rows(history):
    """The latest row of each (proposal, sample) of a watch ``history`` (a DataFrame with
    :data:`HISTORY_COLUMNS`), in natural order of proposal and sample; BadInput when it is not one."""
    if not isinstance(history, pd.DataFrame):
        raise BadInput(f"live view: history must be a pandas DataFrame, got {type(history).__name__}")
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise BadInput(f"live view: the history lacks columns {missing}; expected {list(HISTORY_COLUMNS)}")
    latest = history.drop_duplicates(["proposal", "sample"], keep="last")
    order = sorted(range(len(latest)), key=lambda i: (natural_key(str(latest["proposal"].iloc[i])),
                                                      natural_key(str(latest["sample"].iloc[i]))))
    return latest.iloc[order].reset_index(drop=True)


def _number(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _measured(value, error, unit=""):
    value, error = _number(value), _number(error)
    if value is None:
        return NOT_KNOWN
    return with_error(value, error if error is not None else math.nan, unit)


def _seconds(value):
    value = _number(value)
    return NOT_KNOWN if value is None else f"{value:.4g}"


def _time(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NOT_KNOWN
    try:
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return str(value)


def shown_table(history):
    """:data:`SHOWN` of each sample's latest row as text (names with control characters
    escaped, not yet HTML-escaped): a DataFrame, one row per sample."""
    rows = []
    for row in latest_rows(history).to_dict("records"):
        trains = _number(row["n_trains"])
        q, checks = _number(row.get("q_weighted")), row.get("checks")
        rows.append((visible(row["proposal"]), visible(row["sample"]),
                     _measured(row["tau_ns"], row["tau_err_ns"], "ns"), _measured(row["f_q"], row["f_q_err"]),
                     NOT_KNOWN if q is None else f"{q:.3f}",
                     _seconds(row["exposure_s"]), NOT_KNOWN if trains is None else f"{trains:.0f}",
                     visible(row["status"]), visible(checks) if isinstance(checks, str) else "",
                     _seconds(row["projected_exposure_s"]), _time(row["time"])))
    return pd.DataFrame(rows, columns=list(SHOWN))


def table_html(history):
    """The live table as an HTML ``<table>`` (every cell escaped)."""
    table = shown_table(history)
    head = "".join(f"<th>{html.escape(name)}</th>" for name in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
                   for row in table.itertuples(index=False))
    return f'<table class="live"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _problem(what, exc):
    return f'<p class="problem">{html.escape(what)} not drawn: {html.escape(visible(exc))}</p>'


class _LiveView:
    """What the page and the widget share: the table and the figures of a history, and the ISF
    image of each sample, kept from the last call that drew it."""

    def __init__(self, *, title=None, overrides=None):
        self.title = "eqegs watch" if title is None else str(title)
        self.overrides = dict(overrides or {})
        self.isf_images = {}  # (proposal, sample) -> <figure> HTML of its latest ISF
        self.isf_fingerprints = {}  # (proposal, sample) -> the row fingerprint of the ISF drawn

    def _draw_isf(self, sample, row):
        """Draw ``sample``'s ISF when its row is fitted and its result is cached and fresh (once
        per result: a row with the fingerprint of the ISF shown keeps it)."""
        if sample is None or row is None or row.get("status") not in FITTED:
            return
        key = (str(row["proposal"]), str(row["sample"]))
        fingerprint = row.get("fingerprint")
        if fingerprint and self.isf_fingerprints.get(key) == fingerprint:
            return  # the same result as the ISF shown: not drawn again
        name = html.escape(visible(f"{key[0]}/{key[1]}"))
        try:
            if sample.cache_status(**self.overrides).get("e_spectrum_and_isf") != "fresh":
                return
            fig = figures.isf(sample.cook("e_spectrum_and_isf", **self.overrides), size=(6.0, 4.3))
            image = figures.html_image(fig, alt=f"ISF of {key[0]}/{key[1]}")
        except Exception as exc:  # a figure that fails never hides the numbers: say so on the page
            image = _problem("ISF", exc)
        self.isf_images[key] = f"<figure><figcaption>ISF of {name}</figcaption>{image}</figure>"
        self.isf_fingerprints[key] = fingerprint if image.startswith("<img") else None

    def figures_html(self, history, sample, row):
        """The figures as HTML: tau against exposure, then the ISF of each sample drawn so far."""
        self._draw_isf(sample, row)
        try:
            trend = figures.html_image(figures.tau_versus_exposure(history), alt="tau against exposure")
        except Exception as exc:  # e.g. no fitted row yet
            trend = _problem("tau against exposure", exc)
        order = sorted(self.isf_images, key=lambda k: (natural_key(k[0]), natural_key(k[1])))
        return (f'<div class="figures"><figure>{trend}</figure>'
                + "".join(self.isf_images[key] for key in order) + "</div>")


STYLE = ("body{font-family:sans-serif;margin:1em}table.live{border-collapse:collapse}"
         "table.live td,table.live th{border:1px solid #bbb;padding:2px 8px;text-align:right}"
         "table.live td:nth-child(-n+2),table.live th{text-align:left}"
         ".figures{display:flex;flex-wrap:wrap;gap:1em}.problem{color:#a00}figure{margin:0}")


class LivePage(_LiveView):
    """A static HTML page that reloads itself every ``refresh_s`` seconds, rewritten on each call.

    ``LivePage(path)`` is the ``on_update`` of a watch (``eqegs watch --live-page PATH``):
    ``page(history, sample, row)`` writes ``path`` anew from the watch ``history`` (DataFrame with
    :data:`HISTORY_COLUMNS`), drawing the ISF of ``sample`` (the ``Sample`` of ``row``, or None)
    from the cache. ``title``: the page's heading; ``overrides``: the watch's one-off parameter
    values (``--set``), so that the cached result drawn is the one the watch cooked.

    The page is written to a temporary file beside ``path`` and renamed over it: a reader sees
    the old page or the new one, never part of one; when anything fails, the old page stays.
    """

    def __init__(self, path, *, refresh_s=5, title=None, overrides=None):
        super().__init__(title=title, overrides=overrides)
        self.path = os.fspath(path)
        if not is_number(refresh_s) or not MIN_REFRESH_S <= refresh_s <= 86400:
            raise BadInput(f"live page: refresh_s must be a number of seconds from {MIN_REFRESH_S} to 86400, "
                           f"got {refresh_s!r}")
        self.refresh_s = refresh_s
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise BadInput(f"live page {self.path}: its folder {folder} does not exist")
        if os.path.isdir(self.path):
            raise BadInput(f"live page {self.path}: is a folder; expected the path of an HTML file")

    def render(self, history, sample=None, row=None):
        """The page's HTML for ``history`` (and the ISF of ``sample``)."""
        table = table_html(history)
        title = html.escape(visible(self.title))
        updated = _time(row.get("time")) if row else NOT_KNOWN
        return ("<!doctype html><html><head><meta charset='utf-8'>"
                f"<meta http-equiv='refresh' content='{self.refresh_s:g}'><title>{title}</title>"
                f"<style>{STYLE}</style></head><body><h1>{title}</h1>"
                f"<p>Latest row {html.escape(updated)}; this page reloads every {self.refresh_s:g} s.</p>"
                f"{table}{self.figures_html(history, sample, row)}</body></html>")

    def __call__(self, history, sample=None, row=None):
        text = self.render(history, sample, row)
        folder, name = os.path.split(os.path.abspath(self.path))
        handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o644)
            os.replace(temporary, self.path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise

    def __repr__(self):
        return f"LivePage({self.path!r}, refresh_s={self.refresh_s!r})"


class LiveWidget(_LiveView):
    """The live view in Jupyter: ``widget = LiveWidget(); display(widget)`` (or the widget as a
    cell's last line), then ``repo.watch(..., on_update=widget)``. ``widget.box`` is an ipywidgets
    ``VBox`` of three ``HTML`` children: the heading, the table and the figures, updated on each
    call. Needs ipywidgets (the ``live`` extra)."""

    def __init__(self, *, title=None, overrides=None):
        super().__init__(title=title, overrides=overrides)
        widgets = optional_import("ipywidgets", "the live notebook widget")
        self.heading = widgets.HTML(f"<h3>{html.escape(visible(self.title))}</h3><p>waiting for the first row</p>")
        self.table = widgets.HTML("")
        self.figures = widgets.HTML("")
        self.box = widgets.VBox([self.heading, self.table, self.figures])

    def __call__(self, history, sample=None, row=None):
        table = table_html(history)
        drawn = self.figures_html(history, sample, row)
        updated = _time(row.get("time")) if row else NOT_KNOWN
        self.table.value = f"<style>{STYLE}</style>{table}"
        self.figures.value = drawn
        self.heading.value = f"<h3>{html.escape(visible(self.title))}</h3><p>Latest row {html.escape(updated)}</p>"

    def _repr_mimebundle_(self, **kwargs):
        return self.box._repr_mimebundle_(**kwargs)
