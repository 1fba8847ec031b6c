"""The q a result of a q range belongs to (docs/e-spectrum-and-isf.md#the-q-of-a-result).

The E spectrum of a q range sums the q bins whose *centres* lie in the requested range
[q_min, q_max], so the pixels used reach past its ends, and they do not contribute equally: a bin
adds its counts to the quasi-elastic spectrum, and S(q) is not flat. A result therefore carries
three descriptions of its q, all in nm⁻¹:

* ``q_weighted``: the intensity-weighted mean q of the pixels used, the q at which a q-dependent
  quantity measured from the summed spectrum (τ, f_q) is to be compared with a model;
* ``q_pixel_min``, ``q_pixel_max``: the smallest and largest q of the pixels used;
* ``q_min``, ``q_max``: the range requested (the ``q_range`` record or the ``ranges`` asked for).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqegs_repo.errors import BadInput

WEIGHTS = ("counts", "pixels")
"""What ``q_weighted`` is weighted by: the bins' counts, or (a range without positive counts)
their pixels."""


@dataclass(frozen=True)
class RangeQ:
    """The q of one q range's result, nm⁻¹ (see the module docstring); ``weighted_by`` is one of
    :data:`WEIGHTS`."""

    q_weighted: float
    q_pixel_min: float
    q_pixel_max: float
    q_min: float
    q_max: float
    weighted_by: str

    NAMES = ("q_weighted", "q_pixel_min", "q_pixel_max", "q_min", "q_max")
    """The names of the q values, as fields, dataset attrs, coordinates and table columns."""

    LONG_NAMES = {"q_weighted": "intensity-weighted mean q of the pixels used",
                  "q_pixel_min": "smallest q of the pixels used",
                  "q_pixel_max": "largest q of the pixels used",
                  "q_min": "requested lower end of the q range",
                  "q_max": "requested upper end of the q range"}

    def values(self) -> dict[str, float]:
        """``{name: value}`` of :attr:`NAMES` (floats, nm⁻¹)."""
        return {name: float(getattr(self, name)) for name in self.NAMES}


def range_q(*, bins: np.ndarray, counts: np.ndarray, q_mean: np.ndarray, npix: np.ndarray,
            q_pixel_min: np.ndarray, q_pixel_max: np.ndarray, q_min: float, q_max: float) -> RangeQ:
    """The :class:`RangeQ` of the q bins ``bins`` (indices, as
    :func:`~eqegs_repo.kernels.e_spectrum.spectra.select_q_bins` gives them) of a requested range
    [``q_min``, ``q_max``] nm⁻¹.

    Per bin, all (bins,): ``counts`` the counts the bin adds to the spectrum (background-subtracted,
    summed over the frames the spectrum keeps), ``q_mean`` the mean q of its pixels, ``npix`` its
    pixels, ``q_pixel_min``/``q_pixel_max`` the extreme q of its pixels (nm⁻¹).

    ``q_weighted`` = Σ_b w_b·q_mean_b / Σ_b w_b over the bins used, w_b = max(counts_b, 0): each
    pixel weighted by the counts of its bin, a bin's pixels taken at their mean q (a bin is
    ``radial_bin_px`` wide, so the intensity slope inside one bin moves this by a negligible
    amount). A bin whose background-subtracted counts are negative (noise) weighs nothing; when
    no bin of the range has positive counts, the bins are weighted by their pixels (the plain
    pixel mean; ``weighted_by`` says which)."""
    bins = np.asarray(bins, dtype=np.intp)
    if bins.ndim != 1 or bins.size == 0:
        raise BadInput(f"range_q: bins must be a non-empty 1-D array of bin indices, got shape {bins.shape}")
    arrays = {"counts": counts, "q_mean": q_mean, "npix": npix, "q_pixel_min": q_pixel_min, "q_pixel_max": q_pixel_max}
    arrays = {name: np.asarray(value, dtype=np.float64) for name, value in arrays.items()}
    sizes = {name: value.shape for name, value in arrays.items()}
    if len(set(sizes.values())) != 1 or arrays["counts"].ndim != 1 or bins.max() >= arrays["counts"].size:
        raise BadInput(f"range_q: the per-bin arrays must be 1-D of one length holding every bin index "
                       f"(largest {bins.max()}); got shapes {sizes}")
    weight = np.clip(arrays["counts"][bins], 0.0, None)
    weighted_by = "counts"
    if not weight.sum() > 0:
        weight, weighted_by = arrays["npix"][bins], "pixels"
    q_weighted = float(np.sum(weight * arrays["q_mean"][bins]) / np.sum(weight))
    return RangeQ(q_weighted, float(np.min(arrays["q_pixel_min"][bins])), float(np.max(arrays["q_pixel_max"][bins])),
                  float(q_min), float(q_max), weighted_by)
