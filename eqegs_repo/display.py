"""How repositories, proposals and samples show themselves: HTML pieces for Jupyter and the
one-word status of a sample row (docs/getting-started.md).
"""
import html
from collections.abc import Mapping

import pandas as pd

from eqegs_repo import step_table
from spice.display import WIDTH as TEXT_WIDTH
from spice.display import format_value, visible


def html_rows(rows):
    cells = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
        f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table>{cells}</table>"


STATUS_STYLES = {"broken": "background-color: #f8d0d0", "spice conflicted": "background-color: #fde3c0",
                  "stale": "background-color: #fff6c0", "cooked": "background-color: #d8f0d8",
                  "partly cooked": "background-color: #ecf8ec", "background": "background-color: #dde8f8"}
"""Row colour of a sample's status in the HTML tables (see :func:`sample_status`)."""


def cell_text(value):
    """Text of a table cell: "" for None and NaN."""
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def records(frame):
    """The rows of a DataFrame as dicts (``frame.to_dict("records")``: Python values, the
    same columns), made column by column (a table of thousands of rows)."""
    columns = list(frame.columns)
    return [dict(zip(columns, values)) for values in zip(*(frame[c].tolist() for c in columns))]


def sample_status(row):
    """One word for a row of ``Proposal.table()``: ``broken`` (a problem), ``spice conflicted``,
    ``background`` (the proposal's background run, ``role``: only reconstruction and
    q_integration apply to it, the samples of ``background_for`` subtract it), ``stale`` (a cached step is out of date and the final one is not fresh), ``cooked`` (the
    final step is cached for the current inputs), ``partly cooked``, ``spice incomplete`` or
    ``not cooked``."""
    cooked, stale, spice = (cell_text(row.get(name)) for name in ("cooked", "stale", "spice"))
    if cell_text(row.get("problem")):
        return "broken"
    if spice == "conflicted":
        return "spice conflicted"
    if cell_text(row.get("role")) == "background":
        return "background"
    if "e_spectrum_and_isf" in cooked.split(","):
        return "cooked"
    if stale:
        return "stale"
    if cooked:
        return "partly cooked"
    return "spice incomplete" if spice == "incomplete" else "not cooked"


# --- compact views of the tables ----------------------------------------------------------------
WIDTH = TEXT_WIDTH
"""Characters a text view of a table fits in (longer problem texts are shortened); the width of
spice's text tables too."""



def letters():
    """``{step: letter}``: one letter per declared step (:mod:`eqegs_repo.step_table`) in the
    compact ``on_disk`` and ``cooked`` columns, in chain order."""
    return {name: step_table.get(name).letter for name in step_table.names()}


def legend():
    """The legend of the letters: ``on_disk / cooked: R reconstruction, Q q_integration, ...``."""
    return ("on_disk / cooked: " + ", ".join(f"{letter} {step}" for step, letter in letters().items())
            + " (lower case: stale, '.': none, '-': n/a)")


def step_letters(fresh, stale=(), applies=None):
    """``"RQE"``-style text of the steps: the letter when in ``fresh``, lower case when in
    ``stale``, ``-`` when not in ``applies`` (None: every step), ``.`` otherwise (``fresh``/``stale``: step names,
    or comma-separated text)."""
    return _step_letters(fresh, stale, applies, letters())


def _step_letters(fresh, stale, applies, steps):
    """:func:`step_letters` with the ``{step: letter}`` of :func:`letters` given (worked out once
    for a table)."""
    fresh, stale = (set(s.split(",")) if isinstance(s, str) else set(s) for s in (fresh, stale))
    applies = steps if applies is None else applies
    return "".join("-" if step not in applies else letter if step in fresh else letter.lower() if step in stale
                   else "." for step, letter in steps.items())


def background_text(row):
    """``"for S001,S002"`` for the background run's row of ``Proposal.table()`` (``"for no
    sample"`` when none subtracts it), ``""`` for any other row."""
    if cell_text(row.get("role")) != "background":
        return ""
    return "for " + (cell_text(row.get("background_for")) or "no sample")


def _empty(column, no_step="."):
    return all(cell_text(v) in ("", no_step) for v in column)


def drop_empty(frame):
    """``frame`` without the columns whose every cell is empty (None, NaN, "" or ``...``)."""
    no_step = "." * len(letters())
    return frame[[c for c in frame.columns if not _empty(frame[c].tolist(), no_step)]]


def _current_on_disk(cell):
    """Whether a step cell of ``Proposal.table()`` names a result that is not ``(stale)``."""
    return any(name and not name.endswith(" (stale)") for name in cell_text(cell).split(","))


def compact_samples(frame):
    """The display form of a ``Proposal.table()`` frame: the step columns folded into
    ``on_disk`` letters (lower case when every result of the step on disk is stale) and
    ``cooked`` letters (:func:`step_letters`), ``stale`` folded into
    ``cooked``, ``input`` only for samples cooked from the app's reconstruction, ``background``
    saying which samples subtract the background run (:func:`background_text`), ``handle`` only
    when it differs from the key, the conditions columns as they are, empty columns dropped."""
    out = pd.DataFrame({"key": frame["key"]})
    if (frame["handle"] != frame["key"]).any():
        out["handle"] = frame["handle"]
    for name, title in (("frames", "frames"), ("sensors", "sensors"), ("sensor_shape", "shape"),
                        ("dtype", "dtype"), ("trains", "trains"), ("exposure_s", "exposure_s")):
        out[title] = frame[name]
    for name in [c for c in frame.columns if c in ("temperature_K", "pressure_Pa") or c.startswith("conditions.")]:
        out[name] = frame[name]  # the sample's conditions; dropped below when none is recorded
    if "input" in frame:  # shown only when a sample is cooked from something else than its raw data
        out["input"] = [text if text != "raw" else "" for text in map(cell_text, frame["input"])]
    rows = records(frame)
    steps = letters()
    out["on_disk"] = [_step_letters([s for s in steps if _current_on_disk(r.get(s))],
                                    [s for s in steps if cell_text(r.get(s))], None, steps) for r in rows]
    out["spice"] = frame["spice"]
    background_steps = step_table.background_steps()
    out["cooked"] = [_step_letters(cell_text(r.get("cooked")), cell_text(r.get("stale")),
                                   background_steps if background_text(r) else None, steps) for r in rows]
    out["background"] = [background_text(r) for r in rows]
    out["problem"] = frame["problem"]
    return drop_empty(out)


LONG_TEXT_COLUMNS = ("problem", "error", "background")
"""Columns of free text that :func:`text_view` shortens to fit the width."""


def text_view(frame, width=WIDTH, legend=None):
    """A DataFrame as plain text without the index, shortening the text of the
    :data:`LONG_TEXT_COLUMNS` so that lines fit in ``width`` characters when the other
    columns allow it; ``legend`` is printed under the table. Control characters in cells and
    column names (a folder name holding a terminal escape or a new line) are shown escaped
    (:func:`spice.display.visible`)."""
    if frame.empty:
        return "(empty)"
    frame = frame.copy()
    frame.columns = [visible(c) for c in frame.columns]
    for name in frame.columns:
        frame[name] = frame[name].map(lambda v: visible(v) if isinstance(v, str) else v)
    long = [c for c in LONG_TEXT_COLUMNS if c in frame.columns]
    text = _with_long_text_last(frame, long, width)
    if text is None:
        for name in long:
            others = frame.drop(columns=name)
            used = len(others.to_string(index=False).splitlines()[0]) if len(others.columns) else 0
            frame[name] = _shortened(frame[name], max(20, width - used - 2))
        with pd.option_context("display.max_colwidth", width, "display.width", width * 2):
            text = frame.to_string(index=False)
    if legend and any(c in frame.columns for c in ("on_disk", "cooked")):
        text += "\n" + legend
    return text


def _shortened(column, room):
    return [text if len(text) <= room else text[:room - 1] + "…" for text in map(cell_text, column)]


def _with_long_text_last(frame, long, width):
    """The text of :func:`text_view` when the ``long`` text columns are the frame's last ones
    and hold text only (the tables of samples), made with one pandas formatting of the other
    columns instead of one per long column: each long column is given the room the others
    leave, shortened and right-aligned as ``DataFrame.to_string`` aligns text. None when that
    does not apply."""
    names = list(frame.columns)
    if (not long or len(long) >= len(names) or set(names[-len(long):]) != set(long)
            or pd.get_option("display.unicode.east_asian_width")):  # aligned by display width then
        return None
    cells = {name: frame[name].tolist() for name in long}
    if not all(isinstance(v, str) for column in cells.values() for v in column):
        return None
    lines = frame[names[:-len(long)]].to_string(index=False).split("\n")
    widths = {name: max(map(len, [name, *column])) for name, column in cells.items()}
    for name in long:  # in the order of LONG_TEXT_COLUMNS, each given the room the others leave
        used = len(lines[0]) + sum(widths[other] + 1 for other in long if other != name)
        cells[name] = _shortened(cells[name], max(20, width - used - 2))
        widths[name] = max(map(len, [name, *cells[name]]))
    for name in names[-len(long):]:
        lines = [f"{line} {text.rjust(widths[name])}" for line, text in zip(lines, [name, *cells[name]])]
    return "\n".join(lines)


def samples_html(frame):
    """HTML table of a ``Proposal.table()`` frame: the compact columns plus a coloured
    status word per sample (:func:`sample_status`)."""
    from spice.display import html_table

    compact = compact_samples(frame)
    status = [sample_status(row) for row in records(frame)]
    compact.insert(1, "status", status)
    rows = [[cell_text(v) for v in row] for row in compact.itertuples(index=False)]
    return (html_table(list(compact.columns), rows, row_styles=[STATUS_STYLES.get(s, "") for s in status])
            + f"<p style='font-size:smaller'>{html.escape(legend())}</p>")


class SampleTable(pd.DataFrame):
    """``Proposal.table()``: a DataFrame with every column (for programs) that shows itself
    compactly (:func:`compact_samples`) in the terminal and in Jupyter. Selections and other
    operations give plain DataFrames; ``.to_string()`` shows every column."""

    @property
    def _constructor(self):
        return pd.DataFrame

    def compact(self):
        """The display form (:func:`compact_samples`) as a plain DataFrame."""
        return compact_samples(self)

    def __repr__(self):
        return text_view(self.compact(), legend=legend())

    def _repr_html_(self):
        return samples_html(self)


class SampleInfo(Mapping):
    """What ``sample.info()`` returns: a read-only mapping (``info["n_frames"]``,
    ``info.to_dict()`` for JSON) that prints as an aligned summary and shows as a table in
    Jupyter. Keys: ``proposal``, ``sample``, ``path``, the marker's fields, ``files`` (name ->
    bytes) and ``raw_bytes``."""

    def __init__(self, data):
        self._data = dict(data)

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    def to_dict(self):
        """A plain dict copy (``files`` copied too)."""
        out = dict(self._data)
        out["files"] = dict(out.get("files", {}))
        return out

    def _lines(self):
        """(label, text) pairs of the summary."""
        d = self._data
        skip = {"proposal", "sample", "files", "raw_bytes"}
        rows = [(k, format_value(v, WIDTH - 24)) for k, v in d.items() if k not in skip]
        files = d.get("files", {})
        rows.append(("files", ", ".join(f"{name} ({size / 1e6:.3g} MB)" for name, size in files.items())
                     or "none"))
        rows.append(("raw_bytes", f"{d.get('raw_bytes', 0)} ({d.get('raw_bytes', 0) / 1e6:.3g} MB)"))
        return rows

    def __repr__(self):
        rows = self._lines()
        width = max(len(k) for k, _ in rows)
        lines = [f"<SampleInfo {self._data.get('proposal')}/{self._data.get('sample')}>"]
        for k, v in rows:
            if len(v) > WIDTH - width - 4 and ", " in v:  # one item per line
                v = (",\n" + " " * (width + 4)).join(v.split(", "))
            lines.append(f"  {k.ljust(width)}  {v}")
        return "\n".join(lines)

    def _repr_html_(self):
        return (f"<p>SampleInfo <code>{html.escape(str(self._data.get('proposal')))}/"
                f"{html.escape(str(self._data.get('sample')))}</code></p>" + html_rows(self._lines()))
