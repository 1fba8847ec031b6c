"""How repositories, proposals and samples show themselves: HTML pieces for Jupyter and the
one-word status of a sample row (docs/getting-started.md).
"""
import html


def html_rows(rows):
    cells = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
        f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table>{cells}</table>"



STATUS_STYLES = {"broken": "background-color: #f8d0d0", "spice conflicted": "background-color: #fde3c0",
                  "stale": "background-color: #fff6c0", "cooked": "background-color: #d8f0d8",
                  "partly cooked": "background-color: #ecf8ec"}
"""Row colour of a sample's status in the HTML tables (see :func:`sample_status`)."""



def cell_text(value):
    """Text of a table cell: "" for None and NaN."""
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)



def sample_status(row):
    """One word for a row of ``Proposal.table()``: ``broken`` (a problem), ``spice conflicted``,
    ``stale`` (a cached step is out of date and the final one is not fresh), ``cooked`` (the
    final step is cached for the current inputs), ``partly cooked``, ``spice incomplete`` or
    ``not cooked``."""
    cooked, stale, spice = (cell_text(row.get(name)) for name in ("cooked", "stale", "spice"))
    if cell_text(row.get("problem")):
        return "broken"
    if spice == "conflicted":
        return "spice conflicted"
    if "e_spectrum_and_isf" in cooked.split(","):
        return "cooked"
    if stale:
        return "stale"
    if cooked:
        return "partly cooked"
    return "spice incomplete" if spice == "incomplete" else "not cooked"
