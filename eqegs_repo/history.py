"""Results history of watched samples, and the stop rule (docs/reanalysis.md#history-and-the-stop-rule).

Each cook of a sample that :func:`eqegs_repo.watch.watch` follows appends one row
(:data:`COLUMNS`) to that sample's CSV file: ``<folder>/<proposal>__<sample>__<tag>/history.csv``,
where ``<folder>`` is the ``history_dir`` given or ``history/`` in the result cache and ``<tag>``
the hash of the sample's URL (the naming of the cache's folders). A row is appended by writing
the whole file again beside it and renaming it into place, so a reader never sees half a row.

The stop rule: the relative error of τ scales as 1/√counts, and counts as the exposure, so the
exposure needed for a target relative error r* is ``exposure_now × (r_now / r*)²``
(:func:`projected_exposure`). The rule is checked against the history: a least-squares line
through log r versus log exposure has slope -0.5 when it holds.
"""
import datetime
import uuid
import warnings
from dataclasses import dataclass

import fsspec
import numpy as np
import pandas as pd

from eqegs_repo.cooking.cache import sample_folder_name
from eqegs_repo.errors import BadInput, WatchWarning, is_number

COLUMNS = ("time", "proposal", "sample", "n_trains", "exposure_s", "tau_ns", "tau_err_ns", "f_q", "f_q_err",
           "status", "fingerprint", "rel_err", "projected_exposure_s", "slope", "q_weighted", "checks")
"""Columns of a history row: UTC time of the row (ISO 8601), keys, ``n_trains`` (the marker's
``trains_integrated``), ``exposure_s`` (the marker's, else trains x frames / frame rate), the fit
(τ in ns, f_q, their errors), the cook's status, the result's fingerprint, the stop rule at
that row (:func:`projected_exposure`: relative error of τ, projected exposure in s, fitted slope),
the q the result belongs to (``q_weighted``, nm⁻¹) and the physics checks it failed (``checks``,
as in the reanalysis table; "" when all passed)."""
LATER_COLUMNS = ("q_weighted", "checks")
"""Columns added after the first history files were written: a file without them reads with
them empty, and the next row written adds them."""
RULE_SLOPE = -0.5
"""Slope of log(relative error of τ) against log(exposure) when errors scale as 1/√counts."""


def history_folder(repo, history_dir=None):
    """``(fs, folder)`` of the history files: ``history_dir`` (path or fsspec URL), else
    ``history/`` in the result cache, else None (no cache: the history is kept in memory only)."""
    if history_dir is not None:
        fs, root = fsspec.core.url_to_fs(str(history_dir))
        return fs, root.rstrip("/")
    if repo.cache is None:
        return None
    return repo.cache.fs, f"{repo.cache.root}/history"


def history_path(folder, sample):
    """The CSV file of ``sample`` under ``folder`` (see the module docstring)."""
    return f"{folder}/{sample_folder_name(sample.path, sample.proposal.key, sample.key)}/history.csv"


def exposure_of(marker):
    """``(n_trains, exposure_s)`` of a marker dict; None where the marker does not say."""
    trains = marker.get("trains_integrated")
    exposure = marker.get("exposure_s")
    if exposure is None and trains is not None and marker.get("frame_rate_hz"):
        exposure = trains * marker["n_frames"] / marker["frame_rate_hz"]
    return trains, (None if exposure is None else float(exposure))


def append_row(fs, path, row):
    """Append ``row`` (a dict of :data:`COLUMNS`) to the CSV at ``path`` atomically: the old rows
    and the new one are written to a hidden file beside it, which is then renamed over it."""
    old = read_file(fs, path)
    table = pd.concat([old, pd.DataFrame([row], columns=list(COLUMNS))], ignore_index=True) if len(old) else \
        pd.DataFrame([row], columns=list(COLUMNS))
    folder = path.rsplit("/", 1)[0]
    temp = f"{folder}/.history-{uuid.uuid4().hex}.csv"
    fs.makedirs(folder, exist_ok=True)
    try:
        with fs.open(temp, "w") as f:
            table.to_csv(f, index=False)
        fs.mv(temp, path)
    except BaseException:
        if fs.exists(temp):
            fs.rm(temp)
        raise
    return table


def read_file(fs, path):
    """The rows of one history CSV (empty with :data:`COLUMNS` when there is none)."""
    try:
        with fs.open(path, "r") as f:
            table = pd.read_csv(f, dtype={"proposal": str, "sample": str})
    except (FileNotFoundError, NotADirectoryError):  # none yet (a folder that cannot be one: written to, warned)
        return pd.DataFrame(columns=list(COLUMNS))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BadInput(f"history file {path} is not a history CSV ({exc}); move it away") from None
    for column in LATER_COLUMNS:
        if column not in table.columns:
            table[column] = None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise BadInput(f"history file {path} lacks the column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    return table[list(COLUMNS)]


def read_history(repo, *, proposals=None, samples=None, history_dir=None):
    """Every history row of ``repo``'s watched samples (:data:`COLUMNS`) as a pandas.DataFrame,
    oldest first; ``proposals``/``samples``: keys to keep (a key or a list; all when None);
    ``history_dir``: where :func:`eqegs_repo.watch.watch` wrote them, if not in the cache."""
    where = history_folder(repo, history_dir)
    if where is None:
        raise BadInput(f"{repo.root} has no result cache, so no history is stored; pass history_dir=")
    fs, folder = where
    tables = [read_file(fs, path) for path in sorted(fs.glob(f"{folder}/*/history.csv"))]
    table = pd.concat([t for t in tables if len(t)], ignore_index=True) if any(len(t) for t in tables) else \
        pd.DataFrame(columns=list(COLUMNS))
    for column, keys in (("proposal", proposals), ("sample", samples)):
        if keys is not None:
            table = table[table[column].isin([keys] if isinstance(keys, str) else list(keys))]
    return table.sort_values("time", kind="stable").reset_index(drop=True)


@dataclass
class Projection:
    """The stop rule at the newest row of one sample's history: ``exposure_s`` and ``rel_err``
    (σ_τ/τ) now, ``projected_exposure_s`` to reach ``target_error`` (``exposure_s × (rel_err /
    target_error)²``; equal to ``exposure_s`` once reached), ``remaining_s``, ``reached``, and
    ``slope``: the least-squares slope of log rel_err against log exposure over the history (None
    with fewer than two exposures), -0.5 when the 1/√counts rule holds."""

    exposure_s: float
    rel_err: float
    target_error: float
    projected_exposure_s: float
    remaining_s: float
    reached: bool
    slope: float = None

    def __str__(self):
        slope = "" if self.slope is None else f"; history slope {self.slope:.2f} (rule -0.5)"
        if self.reached:
            return f"target {self.target_error:g} reached (rel. error {self.rel_err:.3g}){slope}"
        return (f"rel. error {self.rel_err:.3g}; target {self.target_error:g} at ~{self.projected_exposure_s:.4g} s "
                f"of exposure ({self.remaining_s:.4g} s more){slope}")


def check_target_error(target_error):
    """``target_error`` as a float, or BadInput: a relative error between 0 and 1 (exclusive)."""
    if not is_number(target_error) or not 0 < target_error < 1:
        raise BadInput(f"target_error must be a relative error of tau between 0 and 1 (e.g. 0.05), got {target_error!r}")
    return float(target_error)


def projected_exposure(history, target_error=0.05):
    """The :class:`Projection` of one sample's ``history`` (rows of :data:`COLUMNS`, oldest first;
    rows without a fitted τ, error or exposure are skipped), or None when no row has them.
    A history of several samples raises BadInput (select one: ``history[history.sample == key]``)."""
    target_error = check_target_error(target_error)
    keys = history[["proposal", "sample"]].drop_duplicates()
    if len(keys) > 1:
        raise BadInput(f"projected_exposure: the history holds {len(keys)} samples; pass the rows of one")
    exposure = pd.to_numeric(history["exposure_s"], errors="coerce").to_numpy(float)
    rel = (pd.to_numeric(history["tau_err_ns"], errors="coerce") /
           pd.to_numeric(history["tau_ns"], errors="coerce")).abs().to_numpy(float)
    good = np.isfinite(exposure) & np.isfinite(rel) & (exposure > 0) & (rel > 0)
    if not good.any():
        return None
    exposure, rel = exposure[good], rel[good]
    slope = None
    if np.unique(exposure).size >= 2:
        slope = float(np.polyfit(np.log(exposure), np.log(rel), 1)[0])
    now, rel_now = float(exposure[-1]), float(rel[-1])
    projected = now * max(1.0, (rel_now / target_error) ** 2)
    return Projection(exposure_s=now, rel_err=rel_now, target_error=target_error, projected_exposure_s=projected,
                      remaining_s=projected - now, reached=rel_now <= target_error, slope=slope)


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class Book:
    """The histories of the samples one watch follows: each sample's rows (read from its file the
    first time it is seen), the file they are appended to (:func:`history_folder`; none without a
    cache or ``history_dir``, or after a write failed with one WatchWarning: then in memory only)
    and the stop rule's ``target_error``."""

    def __init__(self, repo, history_dir=None, target_error=0.05):
        self.where = history_folder(repo, history_dir)
        self.target_error = check_target_error(target_error)
        self.tables = {}

    def rows_of(self, sample):
        """The history of ``sample`` so far (:data:`COLUMNS`)."""
        key = (sample.proposal.key, sample.key)
        if key not in self.tables:
            self.tables[key] = pd.DataFrame(columns=list(COLUMNS)) if self.where is None else \
                read_file(self.where[0], history_path(self.where[1], sample))
        return self.tables[key]

    def all(self):
        """Every row of every sample seen so far, oldest first (:data:`COLUMNS`)."""
        tables = [t for t in self.tables.values() if len(t)]
        if not tables:
            return pd.DataFrame(columns=list(COLUMNS))
        return pd.concat(tables, ignore_index=True).sort_values("time", kind="stable").reset_index(drop=True)

    def record(self, sample, cooked):
        """Append the row of one cook (``cooked``: a row of :data:`eqegs_repo.batch.COLUMNS`) with
        the exposure from the sample's marker and the stop rule; returns ``(row, Projection or
        None)``, or None when the cook gave the result of the newest row again (same fingerprint)."""
        old = self.rows_of(sample)
        fingerprint = cooked.get("spice_fingerprint")
        if fingerprint and len(old) and old["fingerprint"].iloc[-1] == fingerprint:
            return None
        try:
            trains, exposure = exposure_of(sample.marker)
        except Exception:  # noqa: BLE001 - a marker that went bad: the row says what is known
            trains, exposure = None, None
        row = dict(time=_utc_now(), proposal=sample.proposal.key, sample=sample.key, n_trains=trains,
                   exposure_s=exposure, tau_ns=cooked.get("tau_ns"), tau_err_ns=cooked.get("tau_error_ns"),
                   f_q=cooked.get("f_q"), f_q_err=cooked.get("f_q_error"), status=cooked.get("status"),
                   fingerprint=fingerprint, rel_err=None, projected_exposure_s=None, slope=None,
                   q_weighted=cooked.get("q_weighted"), checks=cooked.get("checks"))
        new = pd.DataFrame([row], columns=list(COLUMNS))
        table = pd.concat([old, new], ignore_index=True) if len(old) else new
        projection = projected_exposure(table, self.target_error)
        if projection is not None and projection.exposure_s == exposure and row["tau_ns"] is not None:
            row.update(rel_err=projection.rel_err, projected_exposure_s=projection.projected_exposure_s,
                       slope=projection.slope)
            table.loc[len(table) - 1, ["rel_err", "projected_exposure_s", "slope"]] = [
                projection.rel_err, projection.projected_exposure_s, projection.slope]
        if self.where is not None:
            path = history_path(self.where[1], sample)
            try:
                table = append_row(self.where[0], path, row)
            except OSError as exc:  # a full disk, a read-only cache: the row stays in memory
                self.where = None
                warnings.warn(f"cannot write the history file {path} ({type(exc).__name__}: {exc}); the "
                              "history is kept in memory only from now on (history_dir= chooses another "
                              "folder)", WatchWarning, stacklevel=3)
        self.tables[(sample.proposal.key, sample.key)] = table
        return row, projection
