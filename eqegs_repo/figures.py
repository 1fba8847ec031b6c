"""Figures of the three steps, drawn from cooked datasets or datasets read back from disk.

One function per figure; each takes the step's ``xarray.Dataset`` (``sample.cook(step)`` or
``sample.results[step][sub]``: the variable names are the same) and returns a
``matplotlib.figure.Figure``. matplotlib is imported only when a figure is drawn, and figures
are built without pyplot (no global state; ``fig.savefig("x.png")`` renders with Agg), so
they work in scripts, on clusters and in Jupyter (``display(fig)``).

=============================  ==================================================  ==========
function                       shows                                               manual
=============================  ==================================================  ==========
:func:`frame_summed_image`     frame-summed image (log scale), ROI, beam centre     figs 01-02
:func:`mask`                   pixels used by the q integration (white = used)      fig 08
:func:`intensity_profile`      intensity per pixel vs q with errors, q range        figs 10, 13
:func:`spectra`                normalised forward and QE spectra vs energy          figs 29-30
:func:`isf`                    ISF with errors, thresholded points, fit             figs 39-40
=============================  ==================================================  ==========
"""
import numpy as np


def _figure(size=(5.0, 4.0)):
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained")


def frame_summed_image(ds, centre=None):
    """Frame-summed image with the ROI (``attrs["roi"]``, inclusive corners) and the beam centre.

    ``ds``: a reconstruction dataset (``image``); ``centre``: (x, y) px, or None to use
    ``attrs["centre_x"/"centre_y"]`` when present.
    """
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    image = np.asarray(ds["image"].values, dtype=float)
    fig = _figure()
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
    if centre is None and "centre_x" in ds.attrs:
        centre = (ds.attrs["centre_x"], ds.attrs["centre_y"])
    if centre is not None:
        ax.plot([centre[0]], [centre[1]], "w+", ms=12, mew=1.5, label="beam centre")
    if roi is not None or centre is not None:
        ax.legend(loc="lower right", fontsize="small")
    ax.set(xlabel="x (px)", ylabel="y (px)", title="frame-summed image")
    return fig


def mask(ds):
    """The mask of a q-integration dataset (``mask``: True = used, drawn white)."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.imshow(np.asarray(ds["mask"].values, dtype=float), origin="upper", cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set(xlabel="x (px)", ylabel="y (px)", title=f"mask: {int(ds['mask'].values.sum())} pixels used")
    return fig


def intensity_profile(ds):
    """Intensity per pixel vs q with errors: ``profile`` of a q-integration dataset or
    ``structure_factor`` of an E-spectrum dataset (then the q range is shaded)."""
    name = "profile" if "profile" in ds else "structure_factor"
    q = ds["q"].values
    values, sigma = ds[name].values, ds[f"{name}_sigma"].values
    fig = _figure()
    ax = fig.add_subplot()
    ax.errorbar(q, values, yerr=sigma, fmt=".-", ms=3, lw=0.8, capsize=0)
    if "q_min" in ds.attrs:
        ax.axvspan(ds.attrs["q_min"], ds.attrs["q_max"], color="orange", alpha=0.25, label="q range")
        ax.legend(fontsize="small")
    ax.set(xlabel="q (nm$^{-1}$)", ylabel="intensity per pixel (counts/px)", title="S(q)")
    return fig


def spectra(ds):
    """Normalised forward and quasi-elastic spectra (``forward_absorption``, ``qe_absorption``
    with their ``_sigma``) vs energy."""
    energy = ds["energy"].values
    fig = _figure((6.0, 4.0))
    ax = fig.add_subplot()
    for label, name in (("forward (resolution)", "forward"), ("quasi-elastic", "qe")):
        ax.errorbar(energy, ds[f"{name}_absorption"].values, yerr=ds[f"{name}_absorption_sigma"].values,
                    fmt=".-", ms=2, lw=0.6, capsize=0, label=label)
    ax.set(xlabel="energy (neV)", ylabel="normalised intensity y / background", title="energy spectra")
    ax.legend(fontsize="small")
    return fig


def isf(ds):
    """ISF F(q,t)/S(q) with Monte-Carlo errors (t > 0), the points below the error threshold,
    and the fit when the dataset holds one (``isf_fit``, ``tau``, ``f_q``)."""
    t = ds["t"].values
    positive = t > 0
    fig = _figure((6.0, 4.0))
    ax = fig.add_subplot()
    ax.errorbar(t[positive], ds["isf"].values[positive], yerr=ds["isf_sigma"].values[positive], fmt="o",
                ms=2, lw=0.6, color="0.6", capsize=0, label="all t > 0")
    accepted = ds["accepted"].values.astype(bool)
    ax.errorbar(t[accepted], ds["isf"].values[accepted], yerr=ds["isf_sigma"].values[accepted], fmt="o",
                ms=3, capsize=0, label="sigma <= threshold")
    if "isf_fit" in ds:
        label = "fit"
        if "tau" in ds:
            label = (f"fit: f_q = {ds['f_q'].item():.3f}, tau = {ds['tau'].item():.1f} "
                     f"+- {ds['tau_error'].item():.1f} ns")
        ax.plot(t[positive], ds["isf_fit"].values[positive], "k-", lw=1, label=label)
    if accepted.any():
        ax.set_xlim(0, t[accepted].max() * 1.1)
    ax.set(xlabel="t (ns)", ylabel="F(q,t) / S(q)", title="intermediate scattering function")
    ax.legend(fontsize="small")
    return fig
