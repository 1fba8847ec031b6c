"""The demo chain: seed spice that matches a synthetic tree, cook its samples, compare with truth.

Used by ``eqegs demo`` and the docs' examples. :func:`seed_spice` writes the records a
synthetic proposal needs (sensor layout and geometry of the simulation, the suggested box
sizes, the background sample, calibrations on the measured waveform with the cos 2θ angle
factor, a q range); :func:`recovered_vs_truth` cooks every sample and lines the fitted τ and f_q
up against the truth of :mod:`eqegs_repo.synthetic`.
"""
import numpy as np
import pandas as pd

from . import synthetic
from .steps import e_spectrum as es


def seed_spice(proposal, params, q_range=(11.0, 13.0), background=synthetic.BACKGROUND_SAMPLE_ID,
               **e_spectrum):
    """Seed default-anchor records of ``proposal`` matching the synthetic ``params``.

    ``background``: the background sample key (None: no subtraction); ``e_spectrum``: fields of
    the ``e_spectrum`` record (e.g. ``n_mc=200``). Returns the records written.
    """
    mappings = synthetic.spice_mappings(params)
    spice = proposal.spice
    written = [spice.seed(name, **{k: v for k, v in mappings[name].items() if k != "schema_version"})
               for name in ("sensor_layout", "geometry")]
    written.append(spice.seed("q_integration", bg_sample_id=background, **synthetic.suggested_boxes(params)))
    written.append(spice.seed("velocity_calibration", kind="poly", poly_coeffs=[0.0, 1.0]))
    written.append(spice.seed("angle_calibration", kind="cos2theta"))
    written.append(spice.seed("q_range", q_min=float(q_range[0]), q_max=float(q_range[1])))
    if e_spectrum:
        written.append(spice.seed("e_spectrum", **e_spectrum))
    return written


def truth_of_fit(ds, truth):
    """(τ, f_q) of an exponential fitted to the true ISF of the q range at the accepted times:
    what a perfect measurement of that range gives (τ varies across the range)."""
    t = ds.t.values[ds.accepted.values]
    isf = truth.isf_in_q_range(ds.attrs["q_min"], ds.attrs["q_max"], t)
    fit = es.fit_relaxation(t, isf, np.full(t.size, 1e-3))
    return fit.tau_ns, fit.f_q


def recovered_vs_truth(repo, base_dir, account=synthetic.DEFAULT_ACCOUNT):
    """Cook every non-background sample of a synthetic tree; one row per sample with the fitted
    τ and f_q, their errors, the truth and the deviation in units of the error."""
    rows = []
    for proposal_key in repo.keys():
        proposal = repo[proposal_key]
        for key in proposal.keys():
            if key == synthetic.BACKGROUND_SAMPLE_ID:
                continue
            ds = proposal[key].cooked
            tau, f_q = truth_of_fit(ds, synthetic.load_truth(base_dir, account, proposal_key, key))
            rows.append({
                "proposal": proposal_key, "sample": key,
                "tau_ns": ds.tau.item(), "tau_err": ds.tau_error.item(), "tau_true": tau,
                "tau_dev_sigma": (ds.tau.item() - tau) / ds.tau_error.item(),
                "f_q": ds.f_q.item(), "f_q_err": ds.f_q_error.item(), "f_q_true": f_q,
                "f_q_dev_sigma": (ds.f_q.item() - f_q) / ds.f_q_error.item(),
                "chi2_red": ds.chi2_red.item(),
            })
    return pd.DataFrame(rows)
