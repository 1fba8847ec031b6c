"""Readable text and HTML tables for views, histories, diffs and the command line."""
import html
import re
import textwrap

MAX_CELL = 60
WIDTH = 120
"""Characters a text table fits in (:func:`text_table` shortens or wraps its widest cells)."""


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def visible(text, keep=""):
    """``text`` with its control characters (C0, DEL and C1, e.g. a terminal escape ``ESC``, a
    new line inside a folder name) written as Python escapes (``\\x1b``, ``\\n``), except those in
    ``keep``: what a text view shows is never obeyed by the terminal. Every text view and the
    command line's output go through it; HTML views escape on their own."""
    def escaped(match):
        char = match.group()
        return char if char in keep else repr(char)[1:-1]

    return _CONTROL.sub(escaped, str(text))


def format_value(value, limit=MAX_CELL):
    """Compact one-line text of a value (long values are shortened with an ellipsis)."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(format_value(v, limit) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {format_value(v, limit)}" for k, v in value.items()) + "}"
    else:
        text = str(value)
    text = visible(text.replace("\n", " "))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def text_table(headers, rows, width=WIDTH, wrap=None):
    """Fixed-width text table of at most ``width`` characters a line (None: no limit); cells are
    formatted with :func:`format_value`.

    When the table is wider, the column ``wrap`` (an index) is wrapped onto more lines to fit;
    without ``wrap`` the widest columns are shortened with an ellipsis (each keeps at least 8
    characters, so a table of very many columns may stay wider)."""
    headers = [visible(h) for h in headers]
    cells = [[format_value(c) if not isinstance(c, str) else visible(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    if width is not None:
        widths = _fitted(widths, width, wrap)
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()
    rule = "  ".join("-" * w for w in widths)
    body = []
    for row in cells:
        pieces = [textwrap.wrap(c, w) or [""] if i == wrap else [c if len(c) <= w else c[:w - 1] + "…"]
                  for i, (c, w) in enumerate(zip(row, widths))]
        for k in range(max(len(p) for p in pieces)):
            body.append("  ".join((p[k] if k < len(p) else "").ljust(w)
                                  for p, w in zip(pieces, widths)).rstrip())
    return "\n".join([line, rule, *body])


def _fitted(widths, width, wrap):
    """Column widths whose line (two spaces between columns) fits ``width``: the ``wrap``
    column takes what is left (at least 20), else the widest columns give up characters."""
    widths = list(widths)
    room = width - 2 * (len(widths) - 1)
    if wrap is not None:
        widths[wrap] = min(widths[wrap], max(20, room - sum(widths) + widths[wrap]))
        return widths
    while sum(widths) > room and max(widths) > 8:
        widths[widths.index(max(widths))] -= 1
    return widths


STATUS_STYLES = {
    "current": "",
    "superseded": "color: #888888",
    "erased": "color: #888888; font-style: italic",
    "conflict": "background-color: #f8d0d0",
}
"""CSS of a record's row in HTML tables, by its status (see :class:`RecordList`)."""


def html_table(headers, rows, caption=None, row_styles=None):
    """HTML table for Jupyter (``_repr_html_``); cells are escaped, non-strings formatted with
    :func:`format_value`. ``row_styles``: one CSS declaration string per row ("" for none)."""
    head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in headers)
    styles = list(row_styles) if row_styles is not None else [""] * len(rows)
    if len(styles) != len(rows):
        raise ValueError(f"html_table: {len(styles)} row styles for {len(rows)} rows")
    body = "".join(
        (f"<tr style='{html.escape(style, quote=True)}'>" if style else "<tr>")
        + "".join(f"<td style='text-align:left'>{html.escape(c if isinstance(c, str) else format_value(c))}</td>"
                  for c in row) + "</tr>" for row, style in zip(rows, styles))
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


RECORD_HEADERS = ("created", "type", "anchor", "rev", "uuid", "author", "status", "data",
                  "comment")


class RecordList(list):
    """A list of :class:`~spice.records.Record` that shows itself as a table.

    ``statuses`` maps uuid -> ``current``/``superseded``/``erased``/``conflict``.
    """

    def __init__(self, records=(), statuses=None):
        super().__init__(records)
        self.statuses = dict(statuses or {})

    def rows(self):
        """One tuple per record, in the order of :data:`RECORD_HEADERS`."""
        return [(r.created[:19].replace("T", " "), r.type, repr(r.anchor), str(r.revision),
                 r.uuid[:8], r.author, self.statuses.get(r.uuid, ""),
                 "(erased)" if r.erased else format_value(r.data), r.comment)
                for r in self]

    def __repr__(self):
        if not self:
            return "(no records)"
        return text_table(RECORD_HEADERS, self.rows())

    def _repr_html_(self):
        if not self:
            return "<p>(no records)</p>"
        styles = [STATUS_STYLES.get(self.statuses.get(r.uuid, ""), "") for r in self]
        return html_table(RECORD_HEADERS, self.rows(), row_styles=styles)
