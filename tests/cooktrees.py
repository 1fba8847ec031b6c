"""Synthetic trees with seeded spice for the cooking tests (helpers, not tests)."""
import os

import numpy as np

from eqegs_repo import Repository, synthetic

PROPOSAL = "2025A1234"
BACKGROUND = synthetic.BACKGROUND_SAMPLE_ID


def image_params(**overrides):
    """A fast image-level run: the tiny canvas (64 x 48 px) with 1024 frames of +-10 mm/s."""
    values = {"n_frames": 1024, "v_max_mm_s": 10.0}
    values.update(overrides)
    return synthetic.preset_params("tiny", **values)


def write_runs(base, params, seeds, proposal=PROPOSAL, first=1):
    """Background ``S000_noise`` (unless present) and samples S<first>... with ``seeds``."""
    folder = f"{base}/{proposal}"
    if not os.path.exists(f"{folder}/{BACKGROUND}"):
        synthetic.write_sample(f"{folder}/{BACKGROUND}", params, seed=10_000, background=True)
    keys = []
    for index, seed in enumerate(seeds):
        key = f"S{first + index:03d}"
        synthetic.write_sample(f"{folder}/{key}", params, seed=int(seed))
        keys.append(key)
    return keys


def repository(base, cache=True):
    """Repository over ``base/{proposal}/{sample}`` with in-memory spice and a cache under base."""
    import hashlib

    store = hashlib.sha256(str(base).encode()).hexdigest()[:12]  # shared by every Repository of base
    return Repository(f"{base}/{{proposal}}/{{sample}}", spice_url=f"memory://spice-{store}",
                      cache_url=f"{base}/.cache" if cache else False)


def seed_spice(prop, params, q_range=(11.0, 13.0), background=True, **e_spectrum):
    """Records matching the simulation: layout, geometry, boxes, background, calibrations."""
    mappings = synthetic.spice_mappings(params)
    for name in ("sensor_layout", "geometry"):
        prop.spice.seed(name, **{k: v for k, v in mappings[name].items() if k != "schema_version"})
    prop.spice.seed("q_integration", bg_sample_id=BACKGROUND if background else None,
                    **synthetic.suggested_boxes(params))
    prop.spice.seed("velocity_calibration", kind="poly", poly_coeffs=[0.0, 1.0])
    prop.spice.seed("angle_calibration", kind="cos2theta")
    prop.spice.seed("q_range", q_min=q_range[0], q_max=q_range[1])
    e_spectrum.setdefault("n_mc", 150)
    prop.spice.seed("e_spectrum", **e_spectrum)


def truth(params):
    """Ground truth of a run written with ``params`` (no truth files needed)."""
    return synthetic.SampleTruth({"params": params.to_mapping(),
                                  "dynamics": params.dynamics().to_mapping()}, {})


def true_fit(ds, params):
    """(tau, f_q) of an exponential fitted to the true ISF of the q range at the accepted times,
    i.e. what a perfect measurement would give for that range (tau varies across it)."""
    from eqegs_repo.steps import e_spectrum as es

    t = ds.t.values[ds.accepted.values]
    f = truth(params).isf_in_q_range(ds.attrs["q_min"], ds.attrs["q_max"], t)
    fit = es.fit_relaxation(t, f, np.full(t.size, 1e-3))
    return fit.tau_ns, fit.f_q
