"""Build the xarray datasets of the three steps from the kernels' numpy results.

Dimensions and coordinates (units in each variable's ``units`` attribute):

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


def _var(dims, values, units="", **attrs):
    if units:
        attrs["units"] = units
    return xr.Variable(dims, np.asarray(values), attrs)


def _image_coords(shape):
    height, width = shape
    return {"y": _var("y", np.arange(height), "px", long_name="row"),
            "x": _var("x", np.arange(width), "px", long_name="column")}


def reconstruction_dataset(image, per_frame, coverage, roi, detection, layout):
    """Reconstruction: frame-summed image, coverage, counts per frame; ROI in attrs."""
    coords = _image_coords(image.shape)
    coords["frame"] = _var("frame", np.arange(per_frame.size), long_name="frame index")
    data = {
        "image": _var(("y", "x"), image, "counts", long_name="frame-summed image I_sum"),
        "coverage": _var(("y", "x"), coverage.astype(np.int8), long_name="sensors covering the pixel"),
        "counts_per_frame": _var("frame", per_frame, "counts", long_name="total counts per frame"),
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
        "frame": _var("frame", np.arange(n_frames), long_name="frame index"),
        "q": _var("q", integrator.q, "nm^-1", long_name="q at the bin centre"),
        "r_px": _var("q", integrator.r_px, "px", long_name="radius at the bin centre"),
        "two_theta": _var("q", integrator.two_theta, "rad", long_name="scattering angle 2theta"),
        "q_mean": _var("q", integrator.q_mean, "nm^-1", long_name="mean q of the bin's pixels"),
        "npix": _var("q", integrator.npix, "px", long_name="pixels in the bin"),
        "normalisation": _var("q", integrator.normalisation, long_name="sum of pixel weights"),
    })
    total = runs["intensity"].sum(axis=0)
    total_var = runs["variance"].sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma = np.where(integrator.normalisation > 0, np.sqrt(total_var) / integrator.normalisation, np.nan)
    data = {
        "intensity": _var(("frame", "q"), runs["intensity"], "counts",
                          long_name="background-subtracted counts per frame and q bin"),
        "variance": _var(("frame", "q"), runs["variance"], "counts^2", long_name="Poisson variance"),
        "forward_sample": _var("frame", runs["forward_sample"], "counts",
                               long_name="forward (direct-beam box) counts of the sample"),
        "profile": _var("q", integrator.profile(total), "counts/px",
                        long_name="frame-summed intensity per pixel, S(q)"),
        "profile_sigma": _var("q", sigma, "counts/px", long_name="error of profile"),
        "image_diff": _var(("y", "x"), image_diff, "counts",
                           long_name="frame-summed image after background subtraction"),
        "mask": _var(("y", "x"), keep, long_name="pixels used (True)"),
    }
    if "forward_background" in runs:
        data["forward_background"] = _var("frame", runs["forward_background"], "counts",
                                          long_name="forward counts of the background run")
    attrs = {"centre_x": centre.x, "centre_y": centre.y, "centre": centre.as_dict(),
             "background": background, "n_pixels_used": int(keep.sum()),
             "n_dead_pixels": int(dead.sum()),
             "dead_pixels": [[int(x), int(y)] for y, x in np.argwhere(dead)[:MAX_LISTED_DEAD_PIXELS]]}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def e_spectrum_dataset(qds, calibration, spectra, isf, q_min, q_max):
    """E spectrum and ISF: spectra on the energy grid, ISF with errors and fit, S(q)."""
    grid = spectra.grid
    n_frames = calibration.velocity.size
    selected = np.zeros(qds.sizes["q"], bool)
    selected[spectra.q_bins] = True
    coords = {
        "frame": _var("frame", np.arange(n_frames), long_name="frame index"),
        "velocity": _var("frame", calibration.velocity, "mm/s", long_name="calibrated Doppler velocity"),
        "energy": _var("energy", grid.centres, "neV", long_name="energy transfer (common grid)"),
        "t": _var("t", isf.t_ns, "ns", long_name="Fourier time"),
        "q": qds["q"].variable,
        "q_sel": _var("q_sel", spectra.q, "nm^-1", long_name="q bins of the q range"),
    }
    fwd, qe = isf.forward, isf.quasielastic
    thresholded = np.where(isf.accepted, isf.isf, np.nan)
    data = {
        "kept": _var("frame", spectra.kept_frames, long_name="frame used (cuts applied)"),
        "forward_counts": _var("frame", qds["forward_sample"].values, "counts"),
        "forward_energy": _var("frame", spectra.forward_energy, "neV", long_name="energy of each frame"),
        "structure_factor": _var("q", qds["profile"].values, "counts/px",
                                 long_name="S(q): intensity per pixel after mask and background"),
        "structure_factor_sigma": _var("q", qds["profile_sigma"].values, "counts/px"),
        "in_q_range": _var("q", selected, long_name="bin inside [q_min, q_max]"),
        "angle_factor": _var("q_sel", spectra.angle_factor, long_name="energy factor g(2theta)"),
        "qe_per_q": _var(("q_sel", "energy"), spectra.per_q.y, "counts",
                         long_name="quasi-elastic spectrum of each q bin (mean per energy bin)"),
        "isf": _var("t", isf.isf, long_name="ISF F(q,t)/S(q), Re"),
        "isf_sigma": _var("t", isf.isf_error, long_name="Monte-Carlo error of the ISF"),
        "isf_imag": _var("t", isf.isf_imag, long_name="Im of the transform ratio (diagnostic)"),
        "accepted": _var("t", isf.accepted, long_name="t > 0 and sigma <= isf_error_threshold"),
        "isf_thresholded": _var("t", thresholded, long_name="ISF where accepted, NaN elsewhere"),
        "forward_transform_real": _var("t", isf.forward_transform.real, "neV"),
        "forward_transform_imag": _var("t", isf.forward_transform.imag, "neV"),
        "qe_transform_real": _var("t", isf.qe_transform.real, "neV"),
        "qe_transform_imag": _var("t", isf.qe_transform.imag, "neV"),
    }
    for label, norm in (("forward", fwd), ("qe", qe)):
        data.update({
            f"{label}": _var("energy", norm.spectrum.y, "counts", long_name=f"{label} spectrum (mean per bin)"),
            f"{label}_sigma": _var("energy", norm.spectrum.sigma, "counts"),
            f"{label}_n": _var("energy", norm.spectrum.n, long_name="values averaged per bin"),
            f"{label}_background": _var("energy", norm.background, "counts"),
            f"{label}_absorption": _var("energy", norm.absorption, long_name="a = y / background"),
            f"{label}_absorption_sigma": _var("energy", norm.absorption_error),
            f"{label}_convex": _var("energy", norm.convex, long_name="s = 1 - a"),
        })
    attrs = {"q_min": float(q_min), "q_max": float(q_max), "seed": int(isf.seed),
             "energy_step_nev": float(grid.step_nev), "isf_parameters": isf.parameters,
             "calibration": calibration.description, "v0_offset_mm_s": calibration.v0_offset,
             "start_cut_frames": calibration.start_cut_frames, "fit": None,
             "centre_x": qds.attrs["centre_x"], "centre_y": qds.attrs["centre_y"]}
    fit = isf.fit
    if fit is not None:
        model = fit.f_q * np.exp(-((np.asarray(isf.t_ns) / fit.tau_ns) ** fit.beta))
        data["isf_fit"] = _var("t", model, long_name=f"fit f_q exp(-(t/tau)^beta), {fit.model}")
        for name, value, unit in (("f_q", fit.f_q, ""), ("f_q_error", fit.f_q_error, ""),
                                  ("tau", fit.tau_ns, "ns"), ("tau_error", fit.tau_error_ns, "ns"),
                                  ("beta", fit.beta, ""), ("beta_error", fit.beta_error, ""),
                                  ("chi2_red", fit.chi2_red, "")):
            data[name] = _var((), value, unit)
        attrs["fit"] = {k: v for k, v in fit.as_dict().items()}
    return xr.Dataset(data, coords=coords, attrs=attrs)
