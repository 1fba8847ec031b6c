"""The app's ``data_table.csv`` as ``calibration`` spice: ``proposal.spice.import_data_table(path)``.

The table (UTF-8 or Shift-JIS; columns ``sample_name, velocity, angle, comment``) names the
velocity and angle calibration numbers of each sample. :func:`parse_data_table` reads its rows
(problems named by line), :func:`match_rows` matches them to sample keys by their numeric part,
and :func:`import_data_table` writes one ``calibration`` record per matched sample (only when a
value changes) and returns an :class:`ImportReport`. See docs/spice.md.
"""
import dataclasses

import fsspec

from eqegs_repo.io.app_format.names import numeric_part
from spice import SpiceError
from spice.display import text_table

DATA_TABLE_COLUMNS = ("sample_name", "velocity", "angle", "comment")


@dataclasses.dataclass(frozen=True)
class TableRow:
    """One data row of data_table.csv (``line`` counts from 1)."""

    line: int
    sample_name: str
    velocity: int
    angle: int
    comment: str


@dataclasses.dataclass
class ImportReport:
    """What :func:`import_data_table` did.

    ``written``: (row, sample key, record or None on a dry run); ``unchanged``: (row, sample
    key) already recorded with the same values; ``unmatched``: rows whose sample_name matches
    no sample; ``ambiguous``: (row, [keys]); ``problems``: messages about lines that were
    skipped or changed (bad numbers, commas in comments, duplicates, conflicts).
    """

    source: str
    written: list = dataclasses.field(default_factory=list)
    unchanged: list = dataclasses.field(default_factory=list)
    unmatched: list = dataclasses.field(default_factory=list)
    ambiguous: list = dataclasses.field(default_factory=list)
    problems: list = dataclasses.field(default_factory=list)
    dry_run: bool = False

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
        return f"data table {self.source}:\n{table}{notes}"


def _decode(payload, source):
    for encoding in ("utf-8-sig", "cp932"):  # the app runs where Shift-JIS comments occur
        try:
            return payload.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SpiceError(f"{source}: not UTF-8 or Shift-JIS text")


def parse_data_table(text, source="data_table.csv"):
    """Parse data_table.csv text; returns (rows, problems).

    Format [M]: ``sample_name, velocity, angle, comment`` with sample_name the numeric part of
    the Sample ID and a comment without commas (the app cuts a comment at its first comma; so
    does this parser, and it says so). The header line is optional; blank lines are skipped.
    """
    rows, problems, seen = [], [], {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = [cell.strip() for cell in line.split(",")]
        if cells[0].lower() == DATA_TABLE_COLUMNS[0]:
            continue
        where = f"{source} line {number}"
        if len(cells) < 3:
            problems.append(f"{where}: expected sample_name, velocity, angle[, comment], "
                            f"found {line.strip()!r}; skipped")
            continue
        name, velocity, angle = cells[:3]
        if not name.isdigit():
            problems.append(f"{where}: sample_name must be the numeric part of a Sample ID "
                            f"(digits), found {name!r}; skipped")
            continue
        numbers = []
        for label, value in (("velocity", velocity), ("angle", angle)):
            if not value.isdigit():
                problems.append(f"{where}: {label} must be a calibration number (integer >= 0), "
                                f"found {value!r}; skipped")
                break
            numbers.append(int(value))
        if len(numbers) < 2:
            continue
        comment = cells[3] if len(cells) > 3 else ""
        if len(cells) > 4:
            problems.append(f"{where}: the comment contains a comma; kept {comment!r}, the part "
                            "before it, as the app does")
        if name in seen:
            problems.append(f"{where}: sample_name {name} repeats line {seen[name]}; skipped")
            continue
        seen[name] = number
        rows.append(TableRow(number, name, numbers[0], numbers[1], comment))
    return rows, problems


def match_rows(rows, sample_keys):
    """Match rows to sample keys: same digits first, else same number (``1`` = ``001``).

    Returns (matched [(row, key)], unmatched [row], ambiguous [(row, [keys])]).
    """
    by_digits, by_number = {}, {}
    for key in sample_keys:
        digits = numeric_part(key)
        if digits:
            by_digits.setdefault(digits, []).append(key)
            by_number.setdefault(int(digits), []).append(key)
    matched, unmatched, ambiguous = [], [], []
    for row in rows:
        keys = by_digits.get(row.sample_name) or by_number.get(int(row.sample_name), [])
        if len(keys) == 1:
            matched.append((row, keys[0]))
        elif keys:
            ambiguous.append((row, keys))
        else:
            unmatched.append(row)
    return matched, unmatched, ambiguous


def import_data_table(collection, path, sample_keys, *, dry_run=False, author=None, fs=None):
    """Write a ``calibration`` record (velocity_number, angle_number, note) at each sample
    named in data_table.csv; returns an :class:`ImportReport`.

    A sample whose record at its own anchor already holds the same numbers and note is left
    alone, so importing twice writes nothing new. Rows that match no sample, match several,
    or cannot be parsed are reported, never guessed.
    """
    if fs is None:
        fs, path = fsspec.core.url_to_fs(str(path))
    try:
        payload = fs.cat_file(path)
    except FileNotFoundError:
        raise SpiceError(f"data table {path} does not exist") from None
    rows, problems = parse_data_table(_decode(payload, path), path)
    report = ImportReport(source=str(path), problems=problems, dry_run=dry_run)
    matched, report.unmatched, report.ambiguous = match_rows(rows, sample_keys)
    index = collection.index()
    for row, key in matched:
        wanted = {"velocity_number": row.velocity, "angle_number": row.angle,
                  "note": row.comment}
        found = index.resolve("calibration", key)
        if found.conflicted:
            report.problems.append(
                f"{path} line {row.line}: calibration for {key!r} is conflicted at anchor "
                f"{found.candidates[0].anchor!r}; resolve it first; skipped")
            continue
        current = found.record
        if (current is not None and current.anchor == key
                and all(current.data.get(k) == v for k, v in wanted.items())):
            report.unchanged.append((row, key))
            continue
        record = None
        if not dry_run:
            record = collection.update("calibration", key, author=author, retry=True,
                                       comment=f"data_table.csv line {row.line} ({path})",
                                       **wanted)
        report.written.append((row, key, record))
    return report
