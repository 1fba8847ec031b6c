"""Figures of one sample's steps: the reconstruction and q integration (Q 01-10 of the app's
manual) and the E spectrum and ISF (E 01-40); :func:`export_figures` names them as the app's
``dl/fig/`` files (docs/figures.md)."""
import numpy as np

from eqegs_repo.errors import BadInput
from eqegs_repo.figures.drawing import (
    Q_LABEL,
    _centre,
    _figure,
    _fit_label,
    _isf_parameter,
    _legend,
    _legend_below,
    _limits,
    _mark_centre,
    _matplotlib,
    _require,
    _values,
    sector_list,
)


def frame_summed_image(ds, centre=None, *, size=None, dpi=None):
    """Frame-summed image with the ROI (``attrs["roi"]``, inclusive corners) and the beam centre.

    ``ds``: a reconstruction dataset (``image``); ``centre``: (x, y) px, or None to use
    ``attrs["centre_x"/"centre_y"]`` when present.
    """
    LogNorm, Rectangle = _matplotlib("matplotlib.colors").LogNorm, _matplotlib("matplotlib.patches").Rectangle

    _require(ds, ["image"], "frame_summed_image", "pass a reconstruction dataset")
    image = _values(ds, "image")
    fig = _figure((5.0, 4.0), size=size, dpi=dpi)
    ax = fig.add_subplot()
    positive = image[image > 0]
    norm = LogNorm(vmin=max(positive.min(), 1e-3), vmax=positive.max()) if positive.size else None
    shown = ax.imshow(np.where(image > 0, image, np.nan), origin="upper", norm=norm, cmap="viridis",
                      interpolation="nearest")
    fig.colorbar(shown, ax=ax, label="counts (all frames)")
    roi = ds.attrs.get("roi")
    if roi is not None:
        x0, y0, x1, y1 = roi
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False, color="r",
                               label="ROI"))
    centre = centre if centre is not None else _centre(ds)
    _mark_centre(ax, centre, "w")
    if roi is not None or centre is not None:
        _legend_below(fig, ax)
    ax.set(xlabel="x (px)", ylabel="y (px)", title="frame-summed image")
    return fig


def forward_counts(ds, *, size=None, dpi=None):
    """Forward (direct-beam box) counts per frame of the sample and, when subtracted, of the
    background run and k x background (q-integration dataset: ``forward_sample``,
    ``forward_background``, ``attrs["background"]``)."""
    _require(ds, ["forward_sample"], "forward_counts", "pass a q-integration dataset")
    frame = np.arange(ds.sizes["frame"])
    fig = _figure((7.0, 3.5), size=size, dpi=dpi)
    ax = fig.add_subplot()
    ax.plot(frame, _values(ds, "forward_sample"), lw=0.8, label="sample")
    background = ds.attrs.get("background")
    if "forward_background" in ds:
        ax.plot(frame, _values(ds, "forward_background"), lw=0.8, label="background run")
        if isinstance(background, dict) and background.get("k") not in (None, 1.0):
            ax.plot(frame, background["k"] * _values(ds, "forward_background"), "--", lw=0.8,
                    label=f"k x background\n(k = {background['k']:.4g}, {background.get('mode', '')})")
    ax.set(xlabel="frame", ylabel="forward counts", title="forward scattering per frame")
    _legend(ax)
    return fig


def subtracted_image(ds, masked=False, *, size=None, dpi=None):
    """Frame-summed image after background subtraction (``image_diff`` of a q-integration
    dataset; linear scale, 1st-99.5th percentile) with the beam centre; ``masked=True`` blanks
    the pixels the mask leaves out."""
    needed = ["image_diff"] + (["mask"] if masked else [])
    _require(ds, needed, "subtracted_image", "pass a q-integration dataset")
    image = _values(ds, "image_diff")
    if masked:
        image = np.where(np.asarray(ds["mask"].values, bool), image, np.nan)
    finite = image[np.isfinite(image)]
    low, high = np.percentile(finite, [1.0, 99.5]) if finite.size else (None, None)
    fig = _figure((5.0, 4.0), size=size, dpi=dpi)
    ax = fig.add_subplot()
    shown = ax.imshow(image, origin="upper", cmap="magma", vmin=low, vmax=high, interpolation="nearest")
    fig.colorbar(shown, ax=ax, label="counts (all frames)")
    _mark_centre(ax, _centre(ds), "c")
    subtracted = ds.attrs.get("background") is not None
    title = "after background subtraction" if subtracted else "no background subtracted"
    ax.set(xlabel="x (px)", ylabel="y (px)", title=("masked, " if masked else "") + title)
    return fig


def mask(ds, sectors=None, *, size=None, dpi=None):
    """The mask of a q-integration dataset (``mask``: True = used, drawn white), the beam centre,
    the dead pixels (magenta crosses, from ``attrs["dead_pixels"]``) and the angle sectors
    (``sectors``: ``[[start, end], ...]`` deg, 0 = +x, clockwise on screen, start > end wraps
    through 0; None: :func:`sector_list` of ``ds``)."""
    Wedge = _matplotlib("matplotlib.patches").Wedge

    _require(ds, ["mask"], "mask", "pass a q-integration dataset (mask.npy is written only when "
                                   "sectors are specified)")
    keep = np.asarray(ds["mask"].values, dtype=float)
    fig = _figure((5.0, 4.0), size=size, dpi=dpi)
    ax = fig.add_subplot()
    ax.imshow(keep, origin="upper", cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    centre = _centre(ds)
    _mark_centre(ax, centre)
    sectors = sector_list(ds) if sectors is None else sectors
    if sectors and centre is not None:
        radius = float(np.hypot(*keep.shape))
        for i, (start, end) in enumerate(sectors):
            end = end + 360.0 if end < start else end
            # phi = atan2(y - yc, x - xc) in data coordinates: with y down it turns clockwise on screen
            ax.add_patch(Wedge(centre, radius, start, end, fill=False, edgecolor="orange", lw=1.5,
                               label="sectors" if i == 0 else None))
        ax.set(xlim=(-0.5, keep.shape[1] - 0.5), ylim=(keep.shape[0] - 0.5, -0.5))
    dead = np.asarray(ds.attrs.get("dead_pixels") or [], dtype=float).reshape(-1, 2)
    if dead.size:
        ax.plot(dead[:, 0], dead[:, 1], "x", color="magenta", ms=5,
                label=f"dead pixels ({ds.attrs.get('n_dead_pixels', len(dead))})")
    if centre is not None or dead.size:
        _legend_below(fig, ax)
    ax.set(xlabel="x (px)", ylabel="y (px)", title=f"mask: {int(keep.sum())} pixels used")
    return fig


def background_subtraction(ds, unsubtracted, *, size=None, dpi=None):
    """I(q) per pixel before and after background subtraction, and the subtracted k x background.

    ``ds``: the q-integration dataset (``profile``, ``profile_sigma``); ``unsubtracted``: the
    same sample integrated without background, ``sample.cook("q_integration",
    bg_sample_id=None)`` (same centre, mask and bins; the background part is their difference).
    """
    for which, data in (("ds", ds), ("unsubtracted", unsubtracted)):
        _require(data, ["profile"], "background_subtraction", f"{which} must be a q-integration dataset")
    if "background" in ds.attrs and ds.attrs["background"] is None:
        raise BadInput("figures.background_subtraction: ds has no background subtracted "
                       "(attrs['background'] is None); cook it with q_integration.bg_sample_id set")
    if unsubtracted.attrs.get("background") is not None:
        raise BadInput("figures.background_subtraction: unsubtracted has a background subtracted "
                       f"({unsubtracted.attrs['background']}); cook it with bg_sample_id=None")
    q, before = ds["q"].values, _values(unsubtracted, "profile")
    if unsubtracted["q"].shape != q.shape or not np.allclose(unsubtracted["q"].values, q, equal_nan=True):
        raise BadInput(f"figures.background_subtraction: the q bins differ (ds: {q.size} bins, "
                       f"unsubtracted: {unsubtracted['q'].size}); integrate both with the same "
                       "centre and radial bins")
    after = _values(ds, "profile")
    sigma = _values(ds, "profile_sigma") if "profile_sigma" in ds else None
    background = ds.attrs.get("background")
    label = "k x background"
    if isinstance(background, dict):
        label = f"k x background\n({background.get('sample')}, k = {background.get('k', float('nan')):.4g})"
    fig = _figure((7.0, 4.0), size=size, dpi=dpi)
    ax = fig.add_subplot()
    ax.plot(q, before, ".-", ms=3, lw=0.8, label="before subtraction")
    ax.plot(q, before - after, ".-", ms=3, lw=0.8, label=label)
    ax.errorbar(q, after, yerr=sigma, fmt=".-", ms=3, lw=0.8, capsize=0, label="after subtraction")
    ax.axhline(0, color="0.7", lw=0.5)
    ax.set(xlabel=Q_LABEL, ylabel="intensity per pixel (counts/px)", title="background subtraction")
    _legend(ax)
    return fig


def intensity_profile(ds, *, size=None, dpi=None):
    """Intensity per pixel vs q with errors: ``profile`` of a q-integration dataset or
    ``structure_factor`` of an E-spectrum dataset (then the q of the pixels used,
    ``q_pixel_min``..``q_pixel_max``, is shaded, the requested range ``q_min``..``q_max`` drawn
    dashed and the intensity-weighted q ``q_weighted`` of the result marked by a line)."""
    name = "profile" if "profile" in ds else "structure_factor"
    _require(ds, [name], "intensity_profile", "pass a q-integration or E-spectrum dataset")
    q = ds[ds[name].dims[0]].values
    sigma = _values(ds, f"{name}_sigma") if f"{name}_sigma" in ds else None
    fig = _figure((5.0, 4.0), size=size, dpi=dpi)
    ax = fig.add_subplot()
    ax.errorbar(q, _values(ds, name), yerr=sigma, fmt=".-", ms=3, lw=0.8, capsize=0)
    if "q_weighted" in ds.attrs:
        a = ds.attrs
        ax.axvspan(a["q_pixel_min"], a["q_pixel_max"], color="orange", alpha=0.25, label="pixels used")
        for end, label in ((a["q_min"], "requested range"), (a["q_max"], None)):
            ax.axvline(end, color="orange", ls="--", lw=1, label=label)
        ax.axvline(a["q_weighted"], color="red", lw=1.2, label=f"weighted q {a['q_weighted']:.3f}")
        _legend(ax)
    ax.set(xlabel=Q_LABEL, ylabel="intensity per pixel (counts/px)", title="S(q)")
    return fig


def velocity_spectra(ds, qds=None, *, size=None, dpi=None):
    """Left: the calibrated drive velocity per frame with the frames cut (start and turn-around
    cuts) marked. Right: forward counts per frame against velocity and, with the q-integration
    dataset ``qds``, the quasi-elastic counts (I(frame, q) summed over the q range), each
    divided by its mean over the kept frames.

    ``ds``: a cooked E-spectrum dataset (``velocity``, ``kept``, ``forward_counts``).
    """
    _require(ds, ["velocity", "kept", "forward_counts"], "velocity_spectra",
             "pass a cooked E-spectrum dataset (sample.cook('e_spectrum_and_isf'))")
    velocity, kept = _values(ds, "velocity"), np.asarray(ds["kept"].values, bool)
    series = {"forward": _values(ds, "forward_counts")}
    if qds is not None:
        _require(qds, ["intensity"], "velocity_spectra", "qds must be a q-integration dataset")
        _require(ds, ["in_q_range"], "velocity_spectra", "pass a cooked E-spectrum dataset")
        if qds.sizes["frame"] != velocity.size:
            raise BadInput(f"figures.velocity_spectra: qds has {qds.sizes['frame']} frames but ds has "
                           f"{velocity.size}; pass the q integration the E spectrum was made from")
        in_range = np.asarray(ds["in_q_range"].values, bool)
        series["quasi-elastic (q range)"] = np.asarray(qds["intensity"].values, float)[:, in_range].sum(axis=1)
    frame = np.arange(velocity.size)
    fig = _figure((10.0, 3.8), size=size, dpi=dpi)
    left, right = fig.subplots(1, 2)
    left.plot(frame, velocity, "-", color="0.7", lw=0.8)
    left.plot(frame[kept], velocity[kept], ".", ms=3, label="kept")
    left.plot(frame[~kept], velocity[~kept], "x", ms=4, color="r", label="cut")
    left.set(xlabel="frame", ylabel="velocity (mm/s)", title="drive waveform and cuts")
    _legend(left)
    for label, counts in series.items():
        relative = counts / counts[kept].mean()
        right.plot(velocity[kept], relative[kept], ".", ms=3, label=f"{label}, kept")
        right.plot(velocity[~kept], relative[~kept], "x", ms=4, label=f"{label}, cut")
    right.set(xlabel="velocity (mm/s)", ylabel="counts / mean of kept frames",
              title="spectra against velocity")
    _legend(right)
    return fig


def energy_spectra(ds, *, size=None, dpi=None):
    """Forward and quasi-elastic spectra (mean counts per energy bin, with errors) against
    energy, their backgrounds (``forward_background``, ``qe_background``; the QE one includes
    relax BG coeff) and the wing regions of ``bg_n_points`` bins each side used to fit them."""
    _require(ds, ["forward", "qe", "forward_background", "qe_background"], "energy_spectra",
             "pass a cooked E-spectrum dataset (sample.cook('e_spectrum_and_isf'))")
    energy = _values(ds, "energy")
    n_points = _isf_parameter(ds, "bg_n_points")
    slope = _isf_parameter(ds, "bg_fit_enabled")
    fig = _figure((9.0, 3.8), size=size, dpi=dpi)
    for ax, (label, name) in zip(fig.subplots(1, 2), (("forward", "forward"), ("quasi-elastic", "qe"))):
        sigma = _values(ds, f"{name}_sigma") if f"{name}_sigma" in ds else None
        ax.errorbar(energy, _values(ds, name), yerr=sigma, fmt=".", ms=3, lw=0.6, capsize=0, label=label)
        ax.plot(energy, _values(ds, f"{name}_background"), "k-", lw=1,
                label="background fit" + (" (slope)" if slope else " (flat)" if slope is not None else ""))
        if n_points:
            half = 0.5 * (energy[1] - energy[0]) if energy.size > 1 else 0.5
            for a, b in ((0, int(n_points) - 1), (energy.size - int(n_points), energy.size - 1)):
                ax.axvspan(energy[a] - half, energy[b] + half, color="orange", alpha=0.2,
                           label="fit region" if a == 0 else None)
        ax.set(xlabel="energy (neV)", ylabel="counts (mean per bin)", title=f"{label} spectrum")
        _legend(ax)
    return fig


def spectra(ds, *, size=None, dpi=None):
    """Normalised forward and quasi-elastic spectra (``forward_absorption``, ``qe_absorption``
    with their ``_sigma``) vs energy."""
    _require(ds, ["forward_absorption", "qe_absorption"], "spectra", "pass an E-spectrum dataset")
    fig = _figure((6.0, 4.0), size=size, dpi=dpi)
    ax = fig.add_subplot()
    for label, name in (("forward (resolution)", "forward"), ("quasi-elastic", "qe")):
        variable = ds[f"{name}_absorption"]
        sigma = _values(ds, f"{name}_absorption_sigma") if f"{name}_absorption_sigma" in ds else None
        ax.errorbar(ds[variable.dims[0]].values, variable.values, yerr=sigma, fmt=".-", ms=2, lw=0.6,
                    capsize=0, label=label)
    ax.set(xlabel="energy (neV)", ylabel="normalised intensity y / background", title="energy spectra")
    _legend(ax)
    return fig


def transforms(ds, *, size=None, dpi=None):
    """Real (left) and imaginary (right) parts of the Fourier transforms of the forward and
    quasi-elastic convex spectra against time (``forward_transform_real`` ... ``_imag``)."""
    names = [f"{s}_transform_{p}" for s in ("forward", "qe") for p in ("real", "imag")]
    _require(ds, names, "transforms", "pass a cooked E-spectrum dataset (sample.cook('e_spectrum_and_isf'))")
    t = _values(ds, "t")
    fig = _figure((9.0, 3.8), size=size, dpi=dpi)
    for ax, part in zip(fig.subplots(1, 2), ("real", "imag")):
        for label, name in (("forward", "forward"), ("quasi-elastic", "qe")):
            ax.plot(t, _values(ds, f"{name}_transform_{part}"), ".-", ms=3, lw=0.8, label=label)
        ax.axhline(0, color="0.7", lw=0.5)
        ax.set(xlabel="t (ns)", ylabel="transform (neV)", title=f"{'real' if part == 'real' else 'imaginary'} part")
        _legend(ax)
    return fig


def isf(ds, *, size=None, dpi=None):
    """Top: ISF F(q,t)/S(q) with Monte-Carlo errors, the points whose error is at most the
    threshold (``accepted``, the points fitted), the others in grey, and the fit when the
    dataset holds one (``isf_fit``; the legend gives f_q, tau and, for kww, beta with their
    errors). Bottom: the Monte-Carlo error of each point and the threshold
    (``isf_error_threshold``).

    Drawn: t > 0 up to one time step past the last accepted point (every t > 0 when none is
    accepted); the legend counts the later points left out. The axes are set from what is
    drawn, error bars and fit included, with a 5 % margin: no point is clipped."""
    _require(ds, ["t", "isf", "isf_sigma"], "isf", "pass an E-spectrum dataset")
    t, values, sigma = _values(ds, "t"), _values(ds, "isf"), _values(ds, "isf_sigma")
    positive = t > 0
    accepted = (np.asarray(ds["accepted"].values, bool) if "accepted" in ds else positive) & positive
    shown = positive.copy()
    if accepted.any():
        later = t[positive & (t > t[accepted].max())]
        shown &= t <= (later.min() if later.size else t.max())
    rejected = shown & ~accepted
    left_out = int((positive & ~shown).sum())
    fig = _figure((7.0, 5.0), size=size, dpi=dpi)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1.3))
    top.errorbar(t[rejected], values[rejected], yerr=sigma[rejected], fmt="o", ms=2, lw=0.6, color="0.6",
                 capsize=0, label="sigma > threshold" + (f"\n({left_out} later points\nnot drawn)" if left_out else ""))
    top.errorbar(t[accepted], values[accepted], yerr=sigma[accepted], fmt="o", ms=3, capsize=0,
                 label="sigma <= threshold\n(fitted)")
    drawn = [values[shown] - sigma[shown], values[shown] + sigma[shown]]
    if "isf_fit" in ds:
        fit = _values(ds, "isf_fit")
        top.plot(t[shown], fit[shown], "k-", lw=1, label=_fit_label(ds))
        drawn.append(fit[shown])
    drawn = np.concatenate(drawn)
    drawn = drawn[np.isfinite(drawn)]
    if drawn.size:
        top.set_ylim(*_limits(drawn.min(), drawn.max()))
    if shown.any():
        top.set_xlim(0, _limits(0, t[shown].max(), 0.04)[1])
    top.set(ylabel="F(q,t) / S(q)", title="intermediate scattering function")
    _legend(top)
    bottom.plot(t[rejected], sigma[rejected], ".", color="0.6")
    bottom.plot(t[accepted], sigma[accepted], ".")
    threshold = _isf_parameter(ds, "isf_error_threshold")
    high = [sigma[shown][np.isfinite(sigma[shown])].max(initial=0.0)]
    if threshold is not None:
        bottom.axhline(threshold, color="r", lw=0.8, label=f"threshold {threshold:g}")
        _legend(bottom)
        high.append(threshold)
    bottom.set_ylim(0, _limits(0, max(high))[1])
    bottom.set(xlabel="t (ns)", ylabel="MC sigma")
    return fig




def export_figures(step, ds, upstream=None):
    """``{file name in dl/fig/: function() -> Figure}`` of one step's figures, named after the
    manual's figure numbers. ``upstream``: the dataset of the previous step (reconstruction for
    q_integration: the image with the beam centre; q_integration for e_spectrum_and_isf: the
    quasi-elastic counts against velocity); figures that need it are left out without it."""
    if step == "reconstruction":
        return {"01_frame_summed_image.png": lambda: frame_summed_image(ds)}
    if step == "q_integration":
        drawn = {}
        if upstream is not None:
            drawn["02_frame_summed_image.png"] = lambda: frame_summed_image(upstream, _centre(ds))
        if "forward_sample" in ds:
            drawn["06_forward_counts.png"] = lambda: forward_counts(ds)
        drawn.update({"07_subtracted_image.png": lambda: subtracted_image(ds),
                      "08_mask.png": lambda: mask(ds),
                      "09_masked_image.png": lambda: subtracted_image(ds, masked=True),
                      "10_intensity_q.png": lambda: intensity_profile(ds)})
        return drawn
    if step == "e_spectrum_and_isf":
        return {"12_velocity_spectra.png": lambda: velocity_spectra(ds, upstream),
                "13_structure_factor.png": lambda: intensity_profile(ds),
                "17_energy_spectra.png": lambda: energy_spectra(ds),
                "26_transforms.png": lambda: transforms(ds),
                "29_spectra.png": lambda: spectra(ds),
                "39_isf.png": lambda: isf(ds)}
    raise BadInput(f"figures.export_figures: unknown step {step!r}; expected reconstruction, "
                   "q_integration or e_spectrum_and_isf")
