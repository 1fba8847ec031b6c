"""Figures of many samples: the relaxation time and the non-ergodicity parameter across samples
and q ranges (docs/figures.md)."""
import numpy as np
import pandas as pd

from eqegs_repo.errors import BadInput
from eqegs_repo.figures.drawing import Q_LABEL, _figure, _legend, _require
from eqegs_repo.kernels.e_spectrum.range_q import RangeQ
from spice.display import visible

SUMMARY_COLUMNS = ("proposal", "sample", "tau_ns", "tau_error_ns", "f_q", "f_q_error", "q_min", "q_max",
                   "q_weighted", "q_pixel_min", "q_pixel_max")


def summary_table(results):
    """The rows :func:`relaxation_summary` draws, as a DataFrame with :data:`SUMMARY_COLUMNS`.

    ``results``: the DataFrame of ``repo.reanalyze(...)`` (failed rows and rows without a fit
    are dropped) or an iterable of cooked E-spectrum datasets (``tau``, ``f_q`` ... and
    ``attrs`` proposal, sample and the q of the result: ``q_min``, ``q_max`` requested,
    ``q_weighted``, ``q_pixel_min``, ``q_pixel_max`` of the pixels used, nm⁻¹).
    """
    if isinstance(results, pd.DataFrame):
        missing = [c for c in SUMMARY_COLUMNS if c not in results.columns]
        if missing:
            raise BadInput(f"figures.summary_table: the table lacks columns {missing}; expected the "
                           f"table of repo.reanalyze(...) with {list(SUMMARY_COLUMNS)}")
        frame = results[list(SUMMARY_COLUMNS)]
    else:
        rows = []
        for i, ds in enumerate(results):
            _require(ds, ["tau", "tau_error", "f_q", "f_q_error"], "summary_table",
                     f"dataset {i} has no fit (fit_model 'none' or too few accepted points)")
            rows.append({"proposal": ds.attrs.get("proposal", ""), "sample": ds.attrs.get("sample", str(i)),
                         "tau_ns": ds["tau"].item(), "tau_error_ns": ds["tau_error"].item(),
                         "f_q": ds["f_q"].item(), "f_q_error": ds["f_q_error"].item(),
                         **{name: ds.attrs.get(name, np.nan) for name in RangeQ.NAMES}})
        frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return frame[pd.to_numeric(frame["tau_ns"], errors="coerce").notna()].reset_index(drop=True)


def relaxation_summary(results, x="q", *, size=None, dpi=None):
    """tau (top) and f_q (bottom) with their errors across samples.

    ``results``: see :func:`summary_table`. ``x="q"``: against the intensity-weighted q of the
    pixels used (``q_weighted``; the horizontal bar spans their q, ``q_pixel_min``..``q_pixel_max``),
    one series per sample; ``x="sample"``: against
    ``proposal/sample`` in table order, one series per q range.
    """
    if x not in ("q", "sample"):
        raise BadInput(f"figures.relaxation_summary: x must be 'q' or 'sample', got {x!r}")
    frame = summary_table(results)
    if x == "q":
        frame = frame[frame["q_weighted"].notna()]
    if frame.empty:
        raise BadInput("figures.relaxation_summary: no fitted result to draw (every row failed, has no "
                       "fit" + (" or no q range" if x == "q" else "") + ")")
    labels = list(dict.fromkeys(f"{p}/{s}" for p, s in zip(frame["proposal"], frame["sample"])))
    if x == "q":
        groups = frame.groupby(["proposal", "sample"], sort=False)
    else:
        groups = frame.groupby(["q_min", "q_max"], sort=False, dropna=False)
    fig = _figure((6.0, 5.0), size=size, dpi=dpi)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for key, group in groups:
        if x == "q":
            position = group["q_weighted"].to_numpy(float)
            spread = [position - group["q_pixel_min"].to_numpy(float), group["q_pixel_max"].to_numpy(float) - position]
            label = "/".join(map(str, key))
        else:
            position = np.array([labels.index(f"{p}/{s}") for p, s in zip(group["proposal"], group["sample"])],
                                float)
            spread = None
            label = f"q {key[0]:g}-{key[1]:g}" if pd.notna(key[0]) else "q range unknown"
        for ax, value, error in ((top, "tau_ns", "tau_error_ns"), (bottom, "f_q", "f_q_error")):
            ax.errorbar(position, group[value].to_numpy(float), yerr=group[error].to_numpy(float), xerr=spread,
                        fmt="o", ms=4, capsize=2, label=label)
    top.set(ylabel="tau (ns)", title="relaxation across samples")
    bottom.set(ylabel="f_q")
    if x == "q":
        bottom.set_xlabel(Q_LABEL)
    else:
        bottom.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize="small")
        bottom.set_xlabel("sample")
    if len(groups) <= 12:
        _legend(top)
    return fig


HISTORY_COLUMNS = ("proposal", "sample", "exposure_s", "tau_ns", "tau_err_ns")
"""The columns of a watch history that :func:`tau_versus_exposure` draws."""


def tau_versus_exposure(history, *, size=None, dpi=None):
    """tau with its error against the exposure, one series per sample, from a watch history
    (a DataFrame with :data:`HISTORY_COLUMNS`: ``exposure_s`` in s, ``tau_ns`` and its error
    ``tau_err_ns`` in ns; one row per cook of a growing sample). Rows without a fitted tau are
    left out; the lines join the cooks of one sample in the order of their exposure; the legend
    names each ``proposal/sample`` (control characters written as escapes, ``\\x1b``)."""
    if not isinstance(history, pd.DataFrame):
        raise BadInput(f"figures.tau_versus_exposure: expected a watch history DataFrame, got "
                       f"{type(history).__name__}")
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise BadInput(f"figures.tau_versus_exposure: the history lacks columns {missing}; expected "
                       f"{list(HISTORY_COLUMNS)}")
    frame = history[list(HISTORY_COLUMNS)].copy()
    for name in HISTORY_COLUMNS[2:]:
        frame[name] = pd.to_numeric(frame[name], errors="coerce")
    frame = frame[frame["tau_ns"].notna() & frame["exposure_s"].notna()]
    if frame.empty:
        raise BadInput("figures.tau_versus_exposure: no row of the history has a fitted tau and an exposure")
    fig = _figure((6.0, 4.0), size=size, dpi=dpi)
    ax = fig.add_subplot()
    groups = frame.groupby(["proposal", "sample"], sort=False)
    for (proposal, sample), group in groups:
        group = group.sort_values("exposure_s")
        ax.errorbar(group["exposure_s"].to_numpy(float), group["tau_ns"].to_numpy(float),
                    yerr=group["tau_err_ns"].to_numpy(float), fmt="o-", ms=4, lw=0.8, capsize=2,
                    label=visible(f"{proposal}/{sample}"))  # a folder name's control characters as escapes
    ax.set(xlabel="exposure (s)", ylabel="tau (ns)", title="tau against exposure")
    if len(groups) <= 12:
        _legend(ax)
    return fig
