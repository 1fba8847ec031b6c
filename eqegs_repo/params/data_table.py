"""The app's ``data_table.csv`` as ``calibration`` spice: ``proposal.spice.import_data_table(path)``.

The table (UTF-8 or Shift-JIS; columns ``sample_name, velocity, angle, comment``) names the
velocity and angle calibration numbers of each sample. :func:`read_data_table` reads the file
within :data:`MAX_TABLE_BYTES`, :func:`parse_data_table` checks every row (ASCII digits, the
``calibration`` schema's bounds; at most :data:`MAX_TABLE_ROWS` rows), :func:`match_rows` matches
rows to sample keys by their numeric part, :func:`duplicate_rows` finds two rows of one sample,
and :func:`import_data_table` writes one ``calibration`` record per matched sample (only when a
value changes) once every row is valid, and returns an :class:`ImportReport`. A table with a bad
row raises :class:`DataTableError` listing every bad cell; nothing is written. See docs/spice.md.
"""
import dataclasses
import io
import re

import fsspec

from eqegs_repo.io.app_format.names import numeric_part
from eqegs_repo.io.layout import read_at_most
from eqegs_repo.params.conditions import ConditionSyntaxError, parse_conditions
from eqegs_repo.params.types import CALIBRATION, CONDITIONS
from spice import SpiceError, SpiceValidationError
from spice.display import text_table
from spice.records import MAX_INT_DIGITS, short_repr

DATA_TABLE_COLUMNS = ("sample_name", "velocity", "angle", "comment")
MAX_TABLE_BYTES = 16 * 1024 * 1024
"""Largest data_table.csv read (bytes); a larger file is refused before it is read."""
MAX_TABLE_ROWS = 100_000
"""Most data rows in one data_table.csv; the app writes one row per sample."""
MAX_NOTE_CHARS = 1000
"""Longest comment (characters) imported as a ``calibration`` note."""
MAX_LISTED = 100
"""Bad cells a :class:`DataTableError` message lists (all are in its ``bad`` attribute)."""
ASCII_DIGITS = re.compile(r"[0-9]+")
NUMBER_FIELDS = ((1, "velocity", CALIBRATION.field("velocity_number")),
                 (2, "angle", CALIBRATION.field("angle_number")))
"""(cell index, column, ``calibration`` field) of the number columns."""


@dataclasses.dataclass(frozen=True)
class TableRow:
    """One data row of data_table.csv (``line`` counts from 1)."""

    line: int
    sample_name: str
    velocity: int
    angle: int
    comment: str

    def data(self):
        """The ``calibration`` fields this row writes."""
        return {"velocity_number": self.velocity, "angle_number": self.angle, "note": self.comment}


@dataclasses.dataclass(frozen=True)
class BadCell:
    """One refused cell of data_table.csv: file, line (from 1), column ("" for a row without
    three cells), the text found and what was expected there."""

    source: str
    line: int
    column: str
    value: str
    expected: str

    def __str__(self):
        column = f", column {self.column}" if self.column else ""  # "": the whole row
        return (f"{self.source} line {self.line}{column}: found "
                f"{short_repr(self.value)}; expected {self.expected}")


class DataTableError(SpiceValidationError):
    """data_table.csv has bad rows; nothing was written. ``bad``: every :class:`BadCell`."""

    def __init__(self, source, bad):
        rows = len({cell.line for cell in bad})
        listed = "".join(f"\n  {cell}" for cell in bad[:MAX_LISTED])
        more = (f"\n  ... and {len(bad) - MAX_LISTED} more (the first {MAX_LISTED} shown)"
                if len(bad) > MAX_LISTED else "")
        super().__init__(f"data table {source}: {len(bad)} bad cell(s) in {rows} row(s); "
                         f"nothing was written (the import writes only when every row is "
                         f"valid):{listed}{more}")
        self.source = source
        self.bad = list(bad)


@dataclasses.dataclass
class ImportReport:
    """What :func:`import_data_table` did.

    ``written``: (row, sample key, record or None on a dry run); ``unchanged``: (row, sample
    key) already recorded with the same values; ``unmatched``: rows whose sample_name matches
    no sample; ``ambiguous``: (row, [keys]); ``problems``: messages about rows that were
    changed (a comment cut at a comma) or skipped (a conflicted calibration). Bad rows are
    never in a report: they raise :class:`DataTableError` before anything is written.
    """

    source: str
    written: list = dataclasses.field(default_factory=list)
    unchanged: list = dataclasses.field(default_factory=list)
    unmatched: list = dataclasses.field(default_factory=list)
    ambiguous: list = dataclasses.field(default_factory=list)
    problems: list = dataclasses.field(default_factory=list)
    dry_run: bool = False
    conditions: list = dataclasses.field(default_factory=list)
    """With ``conditions_from_comments``: (row, sample key, fields, outcome) per matched row
    whose comment holds conditions; outcome ``written r<n>``, ``would write`` or ``unchanged``."""

    def rows(self):
        """(line, sample_name, sample, velocity, angle, outcome) per data row."""
        verb = "would write" if self.dry_run else "written"
        out = [(r.line, r.sample_name, key, r.velocity, r.angle,
                f"{verb}" + (f" r{rec.revision} {rec.uuid[:8]}" if rec is not None else ""))
               for r, key, rec in self.written]
        out += [(r.line, r.sample_name, key, r.velocity, r.angle, "unchanged")
                for r, key in self.unchanged]
        out += [(r.line, r.sample_name, "", r.velocity, r.angle, "no matching sample")
                for r in self.unmatched]
        out += [(r.line, r.sample_name, "", r.velocity, r.angle,
                 "ambiguous: " + ", ".join(keys)) for r, keys in self.ambiguous]
        return sorted(out, key=lambda row: row[0])

    def __repr__(self):
        table = text_table(("line", "sample_name", "sample", "velocity", "angle", "outcome"),
                           [tuple(str(c) for c in row) for row in self.rows()])
        notes = "".join(f"\n! {message}" for message in self.problems)
        conditions = "".join(f"\nconditions line {row.line} {key}: {fields} ({outcome})"
                             for row, key, fields, outcome in self.conditions)
        return f"data table {self.source}:\n{table}{notes}{conditions}"


def read_data_table(path, fs=None):
    """The text of data_table.csv (UTF-8 or Shift-JIS), refusing what is not a regular file or
    is larger than :data:`MAX_TABLE_BYTES` before reading it."""
    if fs is None:
        fs, path = fsspec.core.url_to_fs(str(path))
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise SpiceError(f"data table {path} does not exist") from None
    if info.get("type") != "file":
        raise SpiceError(f"data table {path} is not a regular file (found {info.get('type')})")
    too_large = (f"data table {path} is larger than {MAX_TABLE_BYTES} bytes (the limit of a "
                 f"data_table.csv; the app writes one short row per sample); refused")
    payload, size = read_at_most(fs, path, MAX_TABLE_BYTES, info.get("size") or 0)
    if size > MAX_TABLE_BYTES:
        raise SpiceError(too_large)
    for encoding in ("utf-8-sig", "cp932"):  # the app runs where Shift-JIS comments occur
        try:
            return payload.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SpiceError(f"data table {path}: not UTF-8 or Shift-JIS text")


def _number(field, text):
    """The int of ASCII-digit text within the field's bounds (the check the write does), or
    None."""
    if not ASCII_DIGITS.fullmatch(text):
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > MAX_INT_DIGITS:  # beyond every bound, and int() refuses 4,300 digits
        return None
    try:
        return field.check(int(digits), field.name)
    except SpiceValidationError:
        return None


def _expected(field, text):
    """What a number cell of ``field`` should hold, naming a non-ASCII digit found in ``text``."""
    expected = f"{field.describe()}, written in the ASCII digits 0-9"
    other = [c for c in text if not c.isascii() and c.isnumeric()]
    return expected + (f" ({short_repr(other[0])} is not one of them)" if other else "")


def _lines(text):
    """(line number, line) of text split at \\n, \\r\\n or \\r (the line numbers an editor shows),
    one line at a time."""
    for number, line in enumerate(io.StringIO(text, newline=None), start=1):
        yield number, line.rstrip("\n")


def parse_data_table(text, source="data_table.csv"):
    """Check every row of data_table.csv text; returns (rows, notes, bad).

    Format [M]: ``sample_name, velocity, angle, comment`` with sample_name the numeric part of
    the Sample ID and a comment without commas (the app cuts a comment at its first comma; so
    does this parser, and it says so in ``notes``). The header line is optional; blank lines
    are skipped. ``sample_name``, ``velocity`` and ``angle`` are ASCII digits (``①``, ``²``
    or full-width digits are refused); the numbers lie within the bounds of the
    ``calibration`` schema; a comment has at most :data:`MAX_NOTE_CHARS` characters.
    ``rows``: the valid :class:`TableRow` s; ``bad``: a :class:`BadCell` for every refused cell.
    More than :data:`MAX_TABLE_ROWS` data rows raise SpiceError at once.
    """
    rows, notes, bad, count = [], [], [], 0
    for number, line in _lines(text):
        cells = [cell.strip() for cell in line.split(",")]
        if not line.strip() or cells[0].lower() == DATA_TABLE_COLUMNS[0]:
            continue
        count += 1
        if count > MAX_TABLE_ROWS:
            raise SpiceError(f"data table {source} has more than {MAX_TABLE_ROWS} rows (line "
                             f"{number}); the limit of a data_table.csv (one row per sample); "
                             "refused, nothing was written")
        found = len(bad)
        if len(cells) < 3:
            bad.append(BadCell(source, number, "", line.strip(),
                               "sample_name, velocity, angle[, comment]"))
            continue
        name, comment = cells[0], cells[3] if len(cells) > 3 else ""
        if not ASCII_DIGITS.fullmatch(name):
            bad.append(BadCell(source, number, "sample_name", name, "the numeric part of a "
                               "Sample ID, in the ASCII digits 0-9"))
        values = {}
        for index, column, field in NUMBER_FIELDS:
            values[field.name] = _number(field, cells[index])
            if values[field.name] is None:
                bad.append(BadCell(source, number, column, cells[index],
                                   _expected(field, cells[index])))
        if len(comment) > MAX_NOTE_CHARS:
            bad.append(BadCell(source, number, "comment", comment,
                               f"at most {MAX_NOTE_CHARS} characters"))
        if len(bad) > found:
            continue
        if len(cells) > 4:
            notes.append(f"{source} line {number}: the comment contains a comma; kept "
                         f"{comment!r}, the part before it, as the app does")
        rows.append(TableRow(number, name, values["velocity_number"], values["angle_number"],
                             comment))
    return rows, notes, bad


def _by_number(digits):
    """Digits without leading zeros: ``"001"`` and ``"1"`` give ``"1"``."""
    return digits.lstrip("0") or "0"


def match_rows(rows, sample_keys):
    """Match rows to sample keys: same digits first, else same number (``1`` = ``001``).

    Returns (matched [(row, key)], unmatched [row], ambiguous [(row, [keys])]).
    """
    by_digits, by_number = {}, {}
    for key in sample_keys:
        digits = numeric_part(key)
        if digits:
            by_digits.setdefault(digits, []).append(key)
            by_number.setdefault(str(int(digits)), []).append(key)  # full-width digits too
    matched, unmatched, ambiguous = [], [], []
    for row in rows:
        keys = by_digits.get(row.sample_name) or by_number.get(_by_number(row.sample_name), [])
        if len(keys) == 1:
            matched.append((row, keys[0]))
        elif keys:
            ambiguous.append((row, keys))
        else:
            unmatched.append(row)
    return matched, unmatched, ambiguous


def duplicate_rows(rows, matched, source="data_table.csv"):
    """A :class:`BadCell` for every row naming a sample an earlier row names: the same sample
    key by :func:`match_rows` (``001`` and ``1`` both match ``S001``), or the same digits."""
    sample = {id(row): key for row, key in matched}
    first, bad = {}, []
    for row in rows:
        key = sample.get(id(row))
        place = ("sample", key) if key is not None else ("digits", row.sample_name)
        if place not in first:
            first[place] = row
            continue
        earlier = first[place]
        what = f"sample {key}" if key is not None else f"sample_name {earlier.sample_name}"
        bad.append(BadCell(source, row.line, "sample_name", row.sample_name,
                           f"one row per sample; line {earlier.line} "
                           f"({earlier.sample_name!r}) names {what} too"))
    return bad


def comment_conditions(rows, source="data_table.csv"):
    """``({id(row): conditions fields}, bad)``: the conditions written in each row's comment
    (:func:`eqegs_repo.params.conditions.parse_conditions`; rows without any are left out) and
    a :class:`BadCell` (column ``comment``) for each comment holding a condition that cannot
    be read."""
    found, bad = {}, []
    for row in rows:
        try:
            fields = parse_conditions(row.comment)
        except ConditionSyntaxError as exc:
            bad.append(BadCell(source, row.line, "comment", exc.word, exc.expected))
            continue
        if fields:
            found[id(row)] = fields
    return found, bad


def _write_conditions(collection, path, matched, found, report, author):
    """Write (or report) a ``conditions`` record at each matched sample whose comment holds
    conditions: the comment's values, the defaults for the fields it does not name (nothing
    is inherited from an earlier anchor); a record at the sample's own anchor with the same
    values is left alone."""
    index = collection.index()
    for row, key in matched:
        if id(row) not in found:
            continue
        fields = {**CONDITIONS.defaults(), **found[id(row)]}  # the comment says it all: nothing inherited
        record = index.resolve("conditions", key).record
        if record is not None and record.anchor == key and all(record.data.get(k) == v for k, v in fields.items()):
            report.conditions.append((row, key, fields, "unchanged"))
        elif report.dry_run:
            report.conditions.append((row, key, fields, "would write"))
        else:
            written = collection.update("conditions", key, author=author, retry=True,
                                        comment=f"data_table.csv line {row.line} comment ({path})", **fields)
            report.conditions.append((row, key, fields, f"written r{written.revision}"))


def import_data_table(collection, path, sample_keys, *, dry_run=False, author=None, fs=None,
                      conditions_from_comments=False):
    """Write a ``calibration`` record (velocity_number, angle_number, note) at each sample
    named in data_table.csv; returns an :class:`ImportReport`.

    Every row is checked first (:func:`parse_data_table`, :func:`duplicate_rows`); a bad row
    raises :class:`DataTableError` naming every bad cell and nothing is written; ``dry_run``
    runs the same checks. A sample whose record at its own anchor already holds the same
    numbers and note is left alone, so importing twice writes nothing new. Rows that match no
    sample or several, and samples whose calibration is conflicted, are reported, never guessed.
    ``conditions_from_comments``: also write a ``conditions`` record from the ``T=300K
    P=0.1MPa name=value`` words of each comment (:func:`comment_conditions`); a condition that
    cannot be read is a bad cell like any other, and nothing is written.
    """
    if fs is None:
        fs, path = fsspec.core.url_to_fs(str(path))
    rows, notes, bad = parse_data_table(read_data_table(path, fs), path)
    matched, unmatched, ambiguous = match_rows(rows, sample_keys)
    conditions, bad_conditions = comment_conditions(rows, path) if conditions_from_comments else ({}, [])
    bad = sorted(bad + duplicate_rows(rows, matched, path) + bad_conditions, key=lambda cell: cell.line)
    if bad:
        raise DataTableError(path, bad)
    report = ImportReport(source=str(path), problems=notes, dry_run=dry_run,
                          unmatched=unmatched, ambiguous=ambiguous)
    index = collection.index()
    todo = []
    for row, key in matched:
        found = index.resolve("calibration", key)
        if found.conflicted:
            report.problems.append(
                f"{path} line {row.line}: calibration for {key!r} is conflicted at anchor "
                f"{found.candidates[0].anchor!r}; resolve it first; skipped")
        elif (found.record is not None and found.record.anchor == key
              and all(found.record.data.get(k) == v for k, v in row.data().items())):
            report.unchanged.append((row, key))
        else:
            todo.append((row, key))
    for row, key in todo:
        record = None
        if not dry_run:
            try:
                record = collection.update("calibration", key, author=author, retry=True,
                                           comment=f"data_table.csv line {row.line} ({path})",
                                           **row.data())
            except SpiceError as exc:
                raise SpiceError(f"data table {path} line {row.line} (sample {key}): {exc}; "
                                 f"{len(report.written)} of {len(todo)} rows were written "
                                 "before it; importing the table again writes only the "
                                 "rest") from exc
        report.written.append((row, key, record))
    _write_conditions(collection, path, matched, conditions, report, author)
    return report
