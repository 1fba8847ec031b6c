"""Build the xarray datasets of the three steps from the kernels' numpy results.

Every variable and coordinate carries ``units`` and ``long_name`` attributes. Units are
written as in the docs (``nm^-1``, ``counts^2``, ``counts/px``); a pure number (a ratio such as
the ISF or f_q, an index, a count of items, a flag or mask) has the unit ``"1"``, the unit of a
dimensionless quantity in UDUNITS and the CF conventions (:data:`DIMENSIONLESS`).

Dimensions and coordinates:

* ``y``, ``x`` -- image rows and columns, px;
* ``frame`` -- frame index of the velocity cycle;
* ``q`` -- radial bins, coordinate q in nm^-1 (with ``r_px``, ``two_theta``, ``npix`` ...);
* ``energy`` -- the common energy grid, neV;
* ``q_sel`` -- the q bins of the q range (E spectrum step), nm^-1;
* ``t`` -- Fourier time, ns.

The layouts are listed in docs/reconstruction.md, docs/q-integration.md and
docs/e-spectrum-and-isf.md.
"""
import numpy as np
import xarray as xr

from eqegs_repo.kernels.e_spectrum.range_q import RangeQ, range_q

DIMENSIONLESS = "1"
"""The ``units`` of a pure number: ratios, indices, counts of items, flags and masks."""


def _var(dims, values, units, long_name, **attrs):
    """A variable with its ``units`` and ``long_name`` (both required: no variable goes without)."""
    return xr.Variable(dims, np.asarray(values), {"units": units, "long_name": long_name, **attrs})


def _index(dim, size):
    """The index coordinate of ``dim`` (0 .. size-1)."""
    return _var(dim, np.arange(size), DIMENSIONLESS, f"{dim} index")


def _image_coords(shape):
    height, width = shape
    return {"y": _var("y", np.arange(height), "px", "row"),
            "x": _var("x", np.arange(width), "px", "column")}


def reconstruction_dataset(image, per_frame, coverage, roi, detection, layout):
    """Reconstruction: frame-summed image, coverage, counts per frame; ROI in attrs."""
    coords = _image_coords(image.shape)
    coords["frame"] = _index("frame", per_frame.size)
    data = {
        "image": _var(("y", "x"), image, "counts", "frame-summed image I_sum"),
        "coverage": _var(("y", "x"), coverage.astype(np.int8), DIMENSIONLESS, "sensors covering the pixel"),
        "counts_per_frame": _var("frame", per_frame, "counts", "total counts per frame"),
    }
    attrs = {"roi": [roi.x0, roi.y0, roi.x1, roi.y1], "roi_mode": "auto" if detection else "manual",
             "roi_detection": detection.as_dict() if detection else None,
             "sensor_layout": layout.to_mapping()}
    return xr.Dataset(data, coords=coords, attrs=attrs)


MAX_LISTED_DEAD_PIXELS = 1000
"""At most this many dead pixels are listed in ``attrs["dead_pixels"]`` (all are counted)."""


def q_integration_dataset(integrator, runs, centre, keep, image_diff, background, dead):
    """Q integration: I(frame, q) with variances, forward spectra, profile, mask, diff image.

    ``runs``: ``{"intensity", "variance", "forward_sample"}`` arrays and, with a background,
    ``"forward_background"``; ``background``: dict of attrs (sample id, k, mode) or None;
    ``dead`` (H, W) bool: the dead pixels masked (``attrs["n_dead_pixels"]`` and their [x, y]
    in ``attrs["dead_pixels"]``, row by row, at most :data:`MAX_LISTED_DEAD_PIXELS`).
    """
    n_frames = runs["intensity"].shape[0]
    coords = _image_coords(keep.shape)
    coords.update({
        "frame": _index("frame", n_frames),
        "q": _var("q", integrator.q, "nm^-1", "q at the bin centre"),
        "r_px": _var("q", integrator.r_px, "px", "radius at the bin centre"),
        "two_theta": _var("q", integrator.two_theta, "rad", "scattering angle 2theta"),
        "q_mean": _var("q", integrator.q_mean, "nm^-1", "mean q of the bin's pixels"),
        "q_pixel_min": _var("q", integrator.q_pixel_min, "nm^-1", "smallest q of the bin's pixels"),
        "q_pixel_max": _var("q", integrator.q_pixel_max, "nm^-1", "largest q of the bin's pixels"),
        "npix": _var("q", integrator.npix, "px", "pixels in the bin"),
        "normalisation": _var("q", integrator.normalisation, "px", "sum of pixel weights (pixels counted by their share)"),
    })
    total = runs["intensity"].sum(axis=0)
    total_var = runs["variance"].sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma = np.where(integrator.normalisation > 0, np.sqrt(total_var) / integrator.normalisation, np.nan)
    data = {
        "intensity": _var(("frame", "q"), runs["intensity"], "counts",
                          "background-subtracted counts per frame and q bin"),
        "variance": _var(("frame", "q"), runs["variance"], "counts^2", "Poisson variance of intensity"),
        "forward_sample": _var("frame", runs["forward_sample"], "counts",
                               "forward (direct-beam box) counts of the sample"),
        "profile": _var("q", integrator.profile(total), "counts/px", "frame-summed intensity per pixel, S(q)"),
        "profile_sigma": _var("q", sigma, "counts/px", "error of profile"),
        "image_diff": _var(("y", "x"), image_diff, "counts", "frame-summed image after background subtraction"),
        "mask": _var(("y", "x"), keep, DIMENSIONLESS, "pixels used (True)"),
    }
    if "forward_background" in runs:
        data["forward_background"] = _var("frame", runs["forward_background"], "counts",
                                          "forward counts of the background run")
    attrs = {"centre_x": centre.x, "centre_y": centre.y, "centre": centre.as_dict(),
             "background": background, "n_pixels_used": int(keep.sum()),
             "n_dead_pixels": int(dead.sum()),
             "dead_pixels": [[int(x), int(y)] for y, x in np.argwhere(dead)[:MAX_LISTED_DEAD_PIXELS]]}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def fit_variables(fit):
    """``(name, value, units, long_name)`` of the fit's scalar variables."""
    return (("f_q", fit.f_q, DIMENSIONLESS, "fitted amplitude f_q of the ISF"),
            ("f_q_error", fit.f_q_error, DIMENSIONLESS, "error of f_q"),
            ("tau", fit.tau_ns, "ns", "fitted relaxation time tau"),
            ("tau_error", fit.tau_error_ns, "ns", "error of tau"),
            ("beta", fit.beta, DIMENSIONLESS, "fitted stretching exponent beta"),
            ("beta_error", fit.beta_error, DIMENSIONLESS, "error of beta"),
            ("chi2_red", fit.chi2_red, DIMENSIONLESS, "reduced chi-square of the fit"))


def q_of_range(qds, spectra, q_min, q_max):
    """The :class:`~eqegs_repo.kernels.e_spectrum.range_q.RangeQ` (nm⁻¹) of the q range
    [``q_min``, ``q_max``] whose E spectra are ``spectra`` (an
    :class:`~eqegs_repo.kernels.e_spectrum.spectra.EnergySpectra`), from the q integration
    ``qds``: each bin used weighted by its background-subtracted counts summed over the frames
    the spectrum keeps (``spectra.kept_frames``). The one rule of the E spectrum step and of
    :mod:`eqegs_repo.cooking.q_resolved`."""
    counts = qds["intensity"].values[np.asarray(spectra.kept_frames, bool)].sum(axis=0)
    return range_q(bins=spectra.q_bins, counts=counts, q_mean=qds["q_mean"].values, npix=qds["npix"].values,
                   q_pixel_min=qds["q_pixel_min"].values, q_pixel_max=qds["q_pixel_max"].values,
                   q_min=q_min, q_max=q_max)


def q_of_range_coords(rqs, dims=()):
    """The q of results as coordinates (nm⁻¹, :attr:`RangeQ.NAMES`): one value each for
    ``dims=()`` and a single :class:`RangeQ` ``rqs``, else one per item of the list ``rqs``
    along ``dims``."""
    if isinstance(rqs, RangeQ):
        return {name: _var(dims, value, "nm^-1", RangeQ.LONG_NAMES[name]) for name, value in rqs.values().items()}
    return {name: _var(dims, [rq.values()[name] for rq in rqs], "nm^-1", RangeQ.LONG_NAMES[name])
            for name in RangeQ.NAMES}


def checks_attrs(checks):
    """The attrs of the physics checks (:func:`eqegs_repo.kernels.e_spectrum.physics_checks`):
    ``physics_checks``, every check as a dict (``name``, ``failed``, the measured ``value``, the
    ``threshold`` and its ``bound`` -- ``max`` or ``min`` --, ``message``, ``details``), and
    ``physics_checks_failed``, the names of the checks that failed (empty when all passed)."""
    return {"physics_checks": [check.as_dict() for check in checks],
            "physics_checks_failed": [check.name for check in checks if check.failed]}


def e_spectrum_dataset(qds, calibration, spectra, isf, rq):
    """E spectrum and ISF: spectra on the energy grid, ISF with errors and fit, S(q). ``rq``:
    the :class:`~eqegs_repo.kernels.e_spectrum.range_q.RangeQ` of the range (:func:`q_of_range`),
    written as scalar coordinates with units and as attrs (``q_weighted``, ``q_pixel_min``,
    ``q_pixel_max``, ``q_min``, ``q_max``, nm⁻¹; ``q_weighted_by``)."""
    grid = spectra.grid
    n_frames = calibration.velocity.size
    selected = np.zeros(qds.sizes["q"], bool)
    selected[spectra.q_bins] = True
    coords = {
        "frame": _index("frame", n_frames),
        "velocity": _var("frame", calibration.velocity, "mm/s", "calibrated Doppler velocity"),
        "energy": _var("energy", grid.centres, "neV", "energy transfer (common grid)"),
        "t": _var("t", isf.t_ns, "ns", "Fourier time"),
        "q": qds["q"].variable,
        "q_sel": _var("q_sel", spectra.q, "nm^-1", "q bins of the q range"),
        **q_of_range_coords(rq),
    }
    fwd, qe = isf.forward, isf.quasielastic
    thresholded = np.where(isf.accepted, isf.isf, np.nan)
    data = {
        "kept": _var("frame", spectra.kept_frames, DIMENSIONLESS, "frame used (cuts applied)"),
        "forward_counts": _var("frame", qds["forward_sample"].values, "counts",
                               "forward (direct-beam box) counts of the sample"),
        "forward_energy": _var("frame", spectra.forward_energy, "neV", "energy of each frame"),
        "structure_factor": _var("q", qds["profile"].values, "counts/px",
                                 "S(q): intensity per pixel after mask and background"),
        "structure_factor_sigma": _var("q", qds["profile_sigma"].values, "counts/px", "error of S(q)"),
        "in_q_range": _var("q", selected, DIMENSIONLESS, "bin inside [q_min, q_max]"),
        "angle_factor": _var("q_sel", spectra.angle_factor, DIMENSIONLESS, "energy factor g(2theta)"),
        "qe_per_q": _var(("q_sel", "energy"), spectra.per_q.y, "counts",
                         "quasi-elastic spectrum of each q bin (mean per energy bin)"),
        "isf": _var("t", isf.isf, DIMENSIONLESS, "ISF F(q,t)/S(q), Re"),
        "isf_sigma": _var("t", isf.isf_error, DIMENSIONLESS, "Monte-Carlo error of the ISF"),
        "isf_imag": _var("t", isf.isf_imag, DIMENSIONLESS, "Im of the transform ratio (diagnostic)"),
        "accepted": _var("t", isf.accepted, DIMENSIONLESS, "t > 0 and sigma <= isf_error_threshold"),
        "isf_thresholded": _var("t", thresholded, DIMENSIONLESS, "ISF where accepted, NaN elsewhere"),
    }
    for label, transform in (("forward", isf.forward_transform), ("qe", isf.qe_transform)):
        for part, values in (("real", transform.real), ("imag", transform.imag)):
            data[f"{label}_transform_{part}"] = _var("t", values, "neV",
                                                     f"{'Re' if part == 'real' else 'Im'} of the Fourier "
                                                     f"transform of the {label} convex spectrum s")
    for label, norm in (("forward", fwd), ("qe", qe)):
        data.update({
            f"{label}": _var("energy", norm.spectrum.y, "counts", f"{label} spectrum (mean per bin)"),
            f"{label}_sigma": _var("energy", norm.spectrum.sigma, "counts", f"error of the {label} spectrum"),
            f"{label}_n": _var("energy", norm.spectrum.n, DIMENSIONLESS, "values averaged per bin"),
            f"{label}_background": _var("energy", norm.background, "counts",
                                        f"off-resonance baseline of the {label} spectrum"),
            f"{label}_absorption": _var("energy", norm.absorption, DIMENSIONLESS, "a = y / background"),
            f"{label}_absorption_sigma": _var("energy", norm.absorption_error, DIMENSIONLESS, "error of a"),
            f"{label}_convex": _var("energy", norm.convex, DIMENSIONLESS, "s = 1 - a"),
        })
    attrs = {**rq.values(), "q_weighted_by": rq.weighted_by, "seed": int(isf.seed),
             "energy_step_nev": float(grid.step_nev), "isf_parameters": isf.parameters,
             "calibration": calibration.description, "v0_offset_mm_s": calibration.v0_offset,
             "start_cut_frames": calibration.start_cut_frames, "fit": None,
             "centre_x": qds.attrs["centre_x"], "centre_y": qds.attrs["centre_y"]}
    fit = isf.fit
    if fit is not None:
        model = fit.f_q * np.exp(-((np.asarray(isf.t_ns) / fit.tau_ns) ** fit.beta))
        data["isf_fit"] = _var("t", model, DIMENSIONLESS, f"fit f_q exp(-(t/tau)^beta), {fit.model}")
        for name, value, unit, long_name in fit_variables(fit):
            data[name] = _var((), value, unit, long_name)
        attrs["fit"] = {k: v for k, v in fit.as_dict().items()}
    return xr.Dataset(data, coords=coords, attrs=attrs)
