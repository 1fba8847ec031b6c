"""Q-resolved dynamics: the E spectrum, ISF and fit of many q ranges from one q integration in
one call (``sample.q_resolved(ranges=[(q_min, q_max), ...])``), and the τ(q) law fitted across
them (docs/e-spectrum-and-isf.md#q-resolved-dynamics).

The sample is integrated once (or taken from the cache); every range then sums its q bins of the
same per-frame sums and goes through the kernels of the ``e_spectrum_and_isf`` step
(:meth:`~eqegs_repo.cooking.cook.Cooker.spectra_and_isf`) with the sample's resolved
``e_spectrum`` parameters. A content seed is the one of a cook of that range alone, so each range
gives the numbers of ``sample.cook(q_min=..., q_max=...)`` to the bit.
"""
import math

import numpy as np
import xarray as xr

from eqegs_repo.cooking import datasets
from eqegs_repo.cooking.cook import Cooker, warn_physics
from eqegs_repo.cooking.datasets import DIMENSIONLESS, _var, q_of_range, q_of_range_coords
from eqegs_repo.cooking.inputs import background_refusal, is_background_run
from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.e_spectrum.q_law import check_beta, fit_relaxations, fit_tau_q_law
from eqegs_repo.params.chain import chain_types
from eqegs_repo.params.effective import StepParameters, normalise_overrides
from eqegs_repo.version import __version__

FIT_FIELDS = ("f_q", "f_q_error", "tau_ns", "tau_error_ns", "beta", "beta_error", "chi2_red")
NAMES = {"tau_ns": "tau", "tau_error_ns": "tau_error"}
UNITS = {"tau_ns": "ns", "tau_error_ns": "ns"}


def bin_edges(q):
    """Edges (bins + 1,) nm⁻¹ of bins with centres ``q`` (bins,): midpoints between centres, the
    outer ones half a spacing beyond the first and last centre."""
    q = np.asarray(q, dtype=np.float64)
    middle = 0.5 * (q[1:] + q[:-1])
    return np.concatenate([[q[0] - (middle[0] - q[0])], middle, [q[-1] + (q[-1] - middle[-1])]])


def checked_ranges(ranges, q, npix, params):
    """The ranges as ``[(q_min, q_max), ...]`` floats, nm⁻¹. ``ranges``: pairs, or an int n that
    splits the sample's resolved q range into n equal ranges. Every range must have
    0 ≤ q_min < q_max, lie within the measured q (the edges of the first and last bin with pixels)
    and hold a bin centre with pixels; all bad ranges are named in one :class:`BadInput`."""
    if isinstance(ranges, (int, np.integer)) and not isinstance(ranges, bool):
        if ranges < 1:
            raise BadInput(f"ranges: an integer splits the q range into that many ranges; got {ranges}")
        q_min, q_max = params.q_range(" (ranges=<int> splits it)")
        ends = np.linspace(q_min, q_max, int(ranges) + 1)
        ranges = list(zip(ends[:-1], ends[1:]))
    try:
        pairs = [(float(a), float(b)) for a, b in ranges]
    except (TypeError, ValueError):
        raise BadInput(f"ranges must be a list of (q_min, q_max) pairs in nm^-1 or an integer, got {ranges!r}") from None
    if not pairs:
        raise BadInput("ranges is empty: give at least one (q_min, q_max) pair in nm^-1")
    measured = np.flatnonzero(np.asarray(npix) > 0)
    edges = bin_edges(q)
    low, high = float(edges[measured[0]]), float(edges[measured[-1] + 1])
    problems = []
    for i, (a, b) in enumerate(pairs):
        where = f"range {i} [{a:g}, {b:g}] nm^-1"
        if not (math.isfinite(a) and math.isfinite(b)) or a < 0:
            problems.append(f"{where}: the ends must be finite and >= 0")
        elif a >= b:
            problems.append(f"{where}: q_min must be below q_max (reversed or empty)")
        elif a < low or b > high:
            problems.append(f"{where}: outside the measured q {low:.3f}..{high:.3f} nm^-1")
        elif not np.any((q[measured] >= a) & (q[measured] <= b)):
            problems.append(f"{where}: holds no q bin centre with pixels (bins every {np.diff(q).mean():.3f} nm^-1)")
    if problems:
        raise BadInput("q_resolved: " + "; ".join(problems))
    return pairs


def q_resolved(sample, ranges, *, beta=None, use_cache=True, **overrides):
    """One dataset with a ``q_range`` dimension: per range the ISF with errors, accepted points
    and fit curve (dims ``q_range``, ``t_index``; the times ``t`` (ns) are a 2-D coordinate, as a
    range's energy grid, and so its times, may differ), the forward and QE spectra (``q_range``,
    ``energy_index``, coordinate ``energy`` neV), f_q, τ (ns), β with errors and χ²_red, and the
    q each belongs to, the coordinates of the E spectrum step by the same rule
    (:func:`eqegs_repo.cooking.datasets.q_of_range`): ``q_weighted`` the intensity-weighted mean q
    of the pixels used (each bin's pixels at their mean q, weighted by the bin's
    background-subtracted counts over the kept frames), ``q_pixel_min``/``q_pixel_max`` the
    extreme q of those pixels, ``q_min``/``q_max`` the requested range (all nm⁻¹; the τ(q) law and
    the figures use ``q_weighted``). ``ranges``: see :func:`checked_ranges`; ``overrides``: the
    keywords of ``sample.cook``.

    ``beta`` None: each range's fit is the step's (``fit_model``); ``"shared"``: the accepted
    points of all ranges are fitted at once with one Kohlrausch β, a number: with β fixed there
    (:func:`eqegs_repo.kernels.e_spectrum.q_law.fit_relaxations`; ``attrs["beta_mode"]``)."""
    if beta is not None:
        check_beta(beta=beta)  # before any work
    params = StepParameters(sample.spice, normalise_overrides(overrides), label=f"{sample.proposal.key}/{sample.key}")
    cooker = Cooker(sample, params, use_cache=use_cache)
    if is_background_run(sample, params):
        raise BadInput(background_refusal(sample, params, "e_spectrum_and_isf"))
    measured = cooker.run.read_velocity()
    qds = cooker.dataset("q_integration")
    q, npix = qds["q"].values, qds["npix"].values
    pairs = checked_ranges(ranges, q, npix, params)
    calibration = cooker.calibration(qds, measured)
    results = [cooker.spectra_and_isf(qds, calibration, a, b, q_range_seed=True) for a, b in pairs]
    isfs = [isf for _, isf, _ in results]
    if beta is None:
        fits = [isf.fit for isf in isfs]
    else:
        fits = fit_relaxations(t_ns=[i.t_ns[i.accepted] for i in isfs], isf=[i.isf[i.accepted] for i in isfs],
                               sigma=[i.isf_error[i.accepted] for i in isfs], beta=beta)
    ds = _dataset(pairs, results, fits, qds, cooker, calibration)
    ds.attrs["beta_mode"] = "per range (fit_model)" if beta is None else beta
    _add_checks(ds, cooker, pairs, results)
    return ds


def _add_checks(ds, cooker, pairs, results):
    """The physics checks of every range (on its own fit of the step): ``attrs["physics_checks"]``
    and ``attrs["physics_checks_failed"]`` as lists over the ranges, and a
    :class:`~eqegs_repo.errors.PhysicsWarning` for every check that failed, naming the range."""
    per_range = [datasets.checks_attrs(cooker.physics_checks(spectra, isf)) for spectra, isf, _ in results]
    ds.attrs["physics_checks"] = [attrs["physics_checks"] for attrs in per_range]
    ds.attrs["physics_checks_failed"] = [attrs["physics_checks_failed"] for attrs in per_range]
    label = f"{cooker.sample.proposal.key}/{cooker.sample.key}"
    for (a, b), attrs in zip(pairs, per_range):
        warn_physics(attrs, f"{label} q range [{a:g}, {b:g}] nm^-1", stacklevel=5)


def _padded(rows, dims, units, long_name, fill=np.nan):
    """A (ranges, longest) variable of 1-D ``rows`` of different lengths, padded with ``fill``."""
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), fill, dtype=np.asarray(rows[0]).dtype if fill is False else np.float64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return _var(dims, out, units, long_name)


def _dataset(pairs, results, fits, qds, cooker, calibration):
    rqs = [q_of_range(qds, spectra, a, b) for (a, b), (spectra, _, _) in zip(pairs, results)]
    isfs = [isf for _, isf, _ in results]
    ranges_dims, t_dims, e_dims = "q_range", ("q_range", "t_index"), ("q_range", "energy_index")
    coords = {
        "q_range": _var(ranges_dims, np.arange(len(pairs)), DIMENSIONLESS, "q range index"),
        **q_of_range_coords(rqs, ranges_dims),
        "t": _padded([isf.t_ns for isf in isfs], t_dims, "ns", "Fourier time (NaN beyond the range's grid)"),
        "energy": _padded([s.grid.centres for s, _, _ in results], e_dims, "neV", "energy transfer"),
    }
    data = {
        "isf": _padded([isf.isf for isf in isfs], t_dims, DIMENSIONLESS, "ISF F(q,t)/S(q), Re"),
        "isf_sigma": _padded([isf.isf_error for isf in isfs], t_dims, DIMENSIONLESS, "Monte-Carlo error of the ISF"),
        "accepted": _padded([isf.accepted for isf in isfs], t_dims, DIMENSIONLESS,
                            "t > 0 and sigma <= isf_error_threshold", fill=False),
        "n_bins": _var(ranges_dims, [s.q_bins.size for s, _, _ in results], DIMENSIONLESS, "q bins summed"),
        "seed": _var(ranges_dims, [isf.seed for isf in isfs], DIMENSIONLESS, "Monte-Carlo seed"),
    }
    for label in ("forward", "qe"):
        parts = [getattr(isf, "forward" if label == "forward" else "quasielastic").spectrum for isf in isfs]
        data[label] = _padded([p.y for p in parts], e_dims, "counts", f"{label} spectrum (mean per bin)")
        data[f"{label}_sigma"] = _padded([p.sigma for p in parts], e_dims, "counts", f"error of the {label} spectrum")
    if all(fit is not None for fit in fits):
        data["isf_fit"] = _padded([f.f_q * np.exp(-((isf.t_ns / f.tau_ns) ** f.beta)) for f, isf in zip(fits, isfs)],
                                  t_dims, DIMENSIONLESS, "fit f_q exp(-(t/tau)^beta)")
    for field in FIT_FIELDS:
        values = [np.nan if fit is None else getattr(fit, field) for fit in fits]
        data[NAMES.get(field, field)] = _var(ranges_dims, values, UNITS.get(field, DIMENSIONLESS), f"fitted {field}")
    types = chain_types("e_spectrum_and_isf")
    attrs = {"step": "q_resolved", "proposal": cooker.sample.proposal.key, "sample": cooker.sample.key,
             "library_version": __version__, "q_integration_fingerprint": cooker.key("q_integration"),
             "isf_parameters": isfs[0].parameters, "calibration": calibration.description,
             "spice": cooker.params.provenance(types), "overrides": cooker.params.overrides_for(types),
             "parameters": cooker.params.fingerprint_values(types),
             "seed_source": results[0][2], "q_weighted_by": [rq.weighted_by for rq in rqs],
             "fit_model": fits[0].model if fits[0] is not None else isfs[0].parameters["fit_model"]}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def tau_q_law(result, *, q0_nm=None):
    """The τ(q) law τ₀·(q/q₀)^(−n) (:func:`eqegs_repo.kernels.e_spectrum.q_law.fit_tau_q_law`)
    fitted to a :func:`q_resolved` dataset (its ``q_weighted``, ``tau``, ``tau_error``) or to a
    ``(q nm⁻¹, tau ns, tau_error ns)`` triple. The exponent is that of the τ the e_spectrum fit
    gives: a simple exponential (``fit_model`` ``exp``, β = 1), with ``fit_model`` ``kww`` the
    KWW τ of each range with its own free β, or with ``q_resolved(..., beta=...)`` the τ of a β
    shared by the ranges or fixed."""
    if isinstance(result, xr.Dataset):
        if "tau" not in result:
            raise BadInput("the q_resolved dataset has no tau (fit_model 'none'); cook it with fit_model 'exp' or 'kww'")
        q, tau, error = result["q_weighted"].values, result["tau"].values, result["tau_error"].values
    else:
        q, tau, error = result
    return fit_tau_q_law(q_nm=q, tau_ns=tau, tau_error_ns=error, q0_nm=q0_nm)
