"""Size estimates checked before cooking allocates large arrays (docs/robustness.md).

The schemas bound every parameter (:mod:`eqegs_repo.params.types`), but allowed values can
still combine into arrays larger than the machine: a fine radial binning of many frames, many
Monte-Carlo resamples of a long spectrum. Each step estimates its largest arrays first and
refuses, naming the parameters, when the estimate exceeds :func:`memory_limit`.
"""
import os

from eqegs_repo.errors import BadInput

LIMIT_VARIABLE = "EQEGS_MAX_ARRAY_BYTES"
"""Environment variable overriding :func:`memory_limit` (bytes)."""
_FALLBACK = 64 << 30


def memory_limit():
    """Bytes one cooking step may plan to hold: ``$EQEGS_MAX_ARRAY_BYTES``, else the machine's
    physical memory (64 GiB when it cannot be told)."""
    text = os.environ.get(LIMIT_VARIABLE, "").strip()
    if text:
        try:
            return int(float(text))
        except ValueError:
            raise BadInput(f"${LIMIT_VARIABLE} = {text!r}: expected a number of bytes") from None
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return _FALLBACK


def check_size(n_bytes, what):
    """Raise BadInput when ``n_bytes`` (an estimate) exceeds :func:`memory_limit`.

    ``what`` names the arrays and the parameters that size them, e.g. ``"the radial sums
    (frames x bins; q_integration.radial_bin_px)"``.
    """
    limit = memory_limit()
    if n_bytes > limit:
        raise BadInput(f"{what} would need about {n_bytes / 2**30:.3g} GiB, more than the "
                       f"{limit / 2**30:.3g} GiB allowed (the machine's memory, or ${LIMIT_VARIABLE}); "
                       "choose a smaller value")
    return n_bytes


def image_bytes(canvas_shape):
    """Estimate for reconstruction: a handful of float64 images of ``canvas_shape`` (H, W)."""
    height, width = (int(v) for v in canvas_shape)
    return 8 * 8 * height * width


def radial_bytes(n_frames, r_max_px, radial_bin_px, n_pixels):
    """Estimate for q integration: sums and variances (frames, bins) of the sample and the
    background, plus per-pixel tables."""
    n_bins = int(r_max_px / radial_bin_px) + 2
    return 8 * 6 * int(n_frames) * n_bins + 8 * 8 * int(n_pixels)


def monte_carlo_bytes(n_mc, n_points):
    """Estimate for the ISF errors: resampled spectra and transforms (n_mc, points)."""
    return 8 * 8 * int(n_mc) * int(n_points)
