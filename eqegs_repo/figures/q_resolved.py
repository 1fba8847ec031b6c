"""Figures of q-resolved dynamics (docs/e-spectrum-and-isf.md#q-resolved-dynamics): τ against q
with the fitted τ(q) law, and the ISF F(q,t) of every q range, from the dataset of
``sample.q_resolved(...)``."""
import numpy as np

from eqegs_repo.errors import BadInput
from eqegs_repo.figures.drawing import Q_LABEL, _figure, _legend, _require, _values
from eqegs_repo.measured import with_error


def tau_of_q(ds, law=None, *, size=None, dpi=None):
    """τ (ns, log scale) of each q range against its intensity-weighted q ``q_weighted`` (log
    scale), the horizontal bar spanning the q of the pixels used (``q_pixel_min``..``q_pixel_max``), and the fitted law ``law`` (a
    :class:`~eqegs_repo.kernels.e_spectrum.q_law.TauQLaw` from
    :func:`eqegs_repo.cooking.q_resolved.tau_q_law`, or None) with its τ₀ and n."""
    _require(ds, ["q_weighted", "q_pixel_min", "q_pixel_max", "tau", "tau_error"], "tau_of_q",
             "draw the dataset of sample.q_resolved(...) cooked with fit_model 'exp' or 'kww'")
    q, tau, error = _values(ds, "q_weighted"), _values(ds, "tau"), _values(ds, "tau_error")
    if not np.isfinite(tau).any():
        raise BadInput("figures.tau_of_q: no q range has a fitted tau")
    fig = _figure((5.0, 4.0), size=size, dpi=dpi)
    ax = fig.subplots()
    ax.errorbar(q, tau, yerr=error, xerr=[q - _values(ds, "q_pixel_min"), _values(ds, "q_pixel_max") - q],
                fmt="o", ms=4, capsize=2, label="q ranges (weighted q; bar: pixels used)")
    if law is not None:
        grid = np.geomspace(float(_values(ds, "q_pixel_min").min()), float(_values(ds, "q_pixel_max").max()), 100)
        ax.plot(grid, law.tau(grid), "r-", label=f"τ₀ (q/{law.q0_nm:.2f})^−n: τ₀ = "
                f"{with_error(law.tau0_ns, law.tau0_error_ns, 'ns')}, n = {with_error(law.n, law.n_error)}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(Q_LABEL)
    ax.set_ylabel("τ (ns)")
    _legend(ax)
    return fig


def isf_of_q(ds, *, size=None, dpi=None):
    """The ISF of every q range with its Monte-Carlo errors (accepted points) and fit curve,
    one colour per range, labelled by its weighted q ``q_weighted``."""
    _require(ds, ["t", "isf", "isf_sigma", "accepted", "q_weighted"], "isf_of_q",
             "draw the dataset of sample.q_resolved(...)")
    fig = _figure((6.0, 4.0), size=size, dpi=dpi)
    ax = fig.subplots()
    for index in range(ds.sizes["q_range"]):
        row = ds.isel(q_range=index)
        t, accepted = _values(row, "t"), np.asarray(row["accepted"].values, bool)
        line = ax.errorbar(t[accepted], _values(row, "isf")[accepted], yerr=_values(row, "isf_sigma")[accepted],
                           fmt="o", ms=3, capsize=1.5, label=f"q = {row['q_weighted'].item():.2f} nm$^{{-1}}$")
        if "isf_fit" in row:
            shown = np.isfinite(t) & (t > 0)
            ax.plot(t[shown], _values(row, "isf_fit")[shown], "-", color=line[0].get_color())
    ax.set_xscale("log")
    ax.set_xlabel("t (ns)")
    ax.set_ylabel("F(q,t)/S(q)")
    _legend(ax)
    return fig
