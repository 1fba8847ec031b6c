"""The text, JSON and image files of the app's step folders, both ways: numbers written as the
shortest text that reads back exactly, tables read with commas and/or whitespace."""
import hashlib
import json
import re

import numpy as np
import xarray as xr

from eqegs_repo.errors import BadSample
from eqegs_repo.io.layout import check_regular_file

_NUMBER = re.compile(r"^[+-]?(\d|\.\d|nan|inf)", re.I)


# --- writing ---------------------------------------------------------------------------------
def table_text(columns, delimiter=" ", comment="# ", notes=()):
    """Columns of equal length as text: ``notes`` (lines of text, each prefixed by ``comment``;
    only with a ``#`` comment, which readers skip), a header line (names; prefixed by ``comment``), then one
    row per line, each number written as the shortest text that reads back exactly."""
    names = list(columns)
    arrays = [np.asarray(columns[n], dtype=np.float64).ravel().tolist() for n in names]
    lines = [comment + note for note in notes] + [comment + delimiter.join(names)]
    lines += [delimiter.join(map(repr, row)) for row in zip(*arrays)]
    return "\n".join(lines) + "\n"


def image_text(image):
    """A 2D array as comma-separated rows (one image row per line, no header)."""
    rows = np.asarray(image, dtype=np.float64).tolist()
    return "\n".join(",".join(map(repr, row)) for row in rows) + "\n"


def mask_sha256(mask):
    """SHA-256 hex of a mask as (H, W) uint8 bytes in C order (recorded in rdf.npz and q.json)."""
    return hashlib.sha256(np.ascontiguousarray(mask, dtype=np.uint8).tobytes()).hexdigest()


def json_default(value):
    """``json.dumps(default=...)`` for numpy scalars and arrays (as Python numbers and lists)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def json_text(record):
    """``record`` as indented JSON text (numpy values as numbers and lists)."""
    return json.dumps(record, indent=2, default=json_default) + "\n"


# --- reading ---------------------------------------------------------------------------------
def read_columns(text, path, min_columns):
    """Numbers of a text table as a (rows, columns) float array. Columns are separated by
    commas and/or whitespace; blank lines, ``#`` comments and header lines (not starting with
    a number) are skipped. Raises BadSample naming ``path`` when no rows are found, rows
    differ in length, or there are fewer than ``min_columns`` columns."""
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#") or not _NUMBER.match(line):
            continue
        try:
            rows.append([float(v) for v in re.split(r"[,\s]+", line.strip(", \t"))])
        except ValueError:
            raise BadSample(f"{path}, line {number}: expected numbers separated by commas or spaces, "
                            f"found {line[:80]!r}") from None
        if len(rows[-1]) != len(rows[0]):
            raise BadSample(f"{path}, line {number}: {len(rows[-1])} columns but the first row has "
                            f"{len(rows[0])}")
    if not rows:
        raise BadSample(f"{path}: no rows of numbers found")
    if len(rows[0]) < min_columns:
        raise BadSample(f"{path}: expected at least {min_columns} columns, found {len(rows[0])}")
    return np.array(rows)


def read_text(fs, path):
    """The UTF-8 text of the regular file ``path``; BadSample naming it otherwise."""
    check_regular_file(fs, path)
    try:
        return fs.cat_file(path).decode("utf-8")
    except UnicodeDecodeError:
        raise BadSample(f"{path}: not a text file (UTF-8 expected)") from None


def read_json(fs, path):
    """The JSON value of the file ``path``; BadSample naming it when it is not JSON."""
    try:
        return json.loads(read_text(fs, path))
    except ValueError as exc:
        raise BadSample(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise BadSample(f"{path}: JSON nested too deeply to read") from None


def read_table(fs, folder, relative, min_columns):
    """:func:`read_columns` of ``<folder>/<relative>``, or None when the file is absent."""
    path = f"{folder}/{relative}"
    return read_columns(read_text(fs, path), path, min_columns) if fs.exists(path) else None


def read_image(fs, folder, relative):
    """A comma-separated image file as (y, x) variable (counts), or None when absent."""
    table = read_table(fs, folder, relative, 1)
    return None if table is None else xr.Variable(("y", "x"), table, {"units": "counts"})
