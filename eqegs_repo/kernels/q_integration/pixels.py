"""Pixel coordinates, masks and detector geometry of the q-integration step
(docs/physics.md#q-integration).

Masks are boolean (H, W) arrays with True = pixel used (the white part of the app's mask
figure); combine them with ``&``. A centre is (x_c, y_c) in px; angles in degrees where a name
says ``_deg``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.physics import (
    q_from_two_theta,
    radius_from_q,
    two_theta_from_radius,
)


def pixel_offsets(shape: tuple[int, int], *, centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dy) = (x − x_c, y − y_c) in px for every pixel, each (H, W) float64."""
    height, width = shape
    xc, yc = (float(c) for c in centre)
    dx = np.broadcast_to(np.arange(width, dtype=np.float64) - xc, (height, width))
    dy = np.broadcast_to((np.arange(height, dtype=np.float64) - yc)[:, None], (height, width))
    return dx, dy


def pixel_radius(shape: tuple[int, int], *, centre: tuple[float, float]) -> np.ndarray:
    """Distance r of each pixel centre from the beam centre, px, (H, W)."""
    dx, dy = pixel_offsets(shape, centre=centre)
    return np.hypot(dx, dy)


def azimuth_deg(shape: tuple[int, int], *, centre: tuple[float, float]) -> np.ndarray:
    """φ = atan2(y − y_c, x − x_c) in degrees mod 360: 0° = +x, increasing clockwise on screen
    (y down).  (H, W) float64."""
    dx, dy = pixel_offsets(shape, centre=centre)
    return np.mod(np.degrees(np.arctan2(dy, dx)), 360.0)


def direct_beam_keep(shape: tuple[int, int], *, centre: tuple[float, float], halfwidth: float = 50) -> np.ndarray:
    """Mask without the direct-beam box |x − x_c|, |y − y_c| ≤ h (``direct_exclusion_halfwidth``)."""
    dx, dy = pixel_offsets(shape, centre=centre)
    return ~((np.abs(dx) <= float(halfwidth)) & (np.abs(dy) <= float(halfwidth)))


def coverage_keep(coverage: np.ndarray) -> np.ndarray:
    """Mask of pixels covered by at least one sensor (``coverage`` > 0); drops the sensor gaps."""
    return np.asarray(coverage) > 0


DEAD_PIXEL_MIN_LEVEL = 20.0
"""A pixel is dead when it recorded 0 counts over the run while its ring's level is at least this
many counts: a live pixel reads 0 there with probability e⁻²⁰ ≈ 2·10⁻⁹."""


def ring_level(summed: np.ndarray, *, centre: tuple[float, float], valid: np.ndarray) -> np.ndarray:
    """The ring median m(r) at every ``valid`` pixel (1-D, in the order of ``summed[valid]``).

    The median of the ``valid`` pixels of each 1-px ring around ``centre``, interpolated
    linearly in r between the rings' mean radii (so it follows radial gradients).
    """
    radius = pixel_radius(summed.shape, centre=centre)[valid]
    ring = np.floor(radius).astype(np.int64)
    values = summed[valid]
    order = np.lexsort((values, ring))
    ring_sorted, values_sorted, radius_sorted = ring[order], values[order], radius[order]
    starts = np.flatnonzero(np.r_[True, ring_sorted[1:] != ring_sorted[:-1]])
    counts = np.diff(np.r_[starts, ring_sorted.size])
    medians = 0.5 * (values_sorted[starts + (counts - 1) // 2] + values_sorted[starts + counts // 2])
    ring_radius = np.add.reduceat(radius_sorted, starts) / counts
    return np.interp(radius, ring_radius, medians)


def _valid_mask(summed: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    valid = np.ones(summed.shape, bool) if valid is None else np.asarray(valid, bool)
    if not valid.any():
        raise BadInput("no valid pixel to estimate hot or dead pixels from")
    return valid


def _ring_z(summed: np.ndarray, centre: tuple[float, float], valid: np.ndarray) -> tuple[np.ndarray, float, float]:
    """z = (I − m(r))/√max(m, 1) of the ``valid`` pixels (in the order of ``summed[valid]``), the
    median of z and the median absolute deviation of z (see :func:`hot_pixel_keep`)."""
    level = ring_level(summed, centre=centre, valid=valid)
    z = (summed[valid] - level) / np.sqrt(np.maximum(level, 1.0))
    centre_z = float(np.median(z))
    return z, centre_z, float(np.median(np.abs(z - centre_z)))


def hot_pixel_keep(
    summed: np.ndarray,
    *,
    centre: tuple[float, float],
    n_mad: float | None = 10.0,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Mask without hot pixels of the frame-summed image (``hot_pixel_mad``; None switches it off).

    The scattering is isotropic, so each pixel is compared with its ring level m(r)
    (:func:`ring_level` over the ``valid`` pixels).  In Poisson units z = (I − m)/√max(m, 1), a
    pixel is hot when z exceeds the median of z by more than ``n_mad`` median absolute deviations
    of z (statistics over ``valid`` pixels).  Comparing along rings, not across neighbours, keeps
    steep radial gradients, image edges and sensor-gap edges from looking hot.
    """
    summed = image_2d(summed, name="summed")
    if n_mad is None:
        return np.ones(summed.shape, bool)
    if not float(n_mad) > 0:
        raise BadInput(f"hot_pixel_mad must be > 0 or None, got {n_mad!r}")
    valid = _valid_mask(summed, valid)
    z, centre_z, mad = _ring_z(summed, centre, valid)
    keep = np.ones(summed.shape, bool)
    keep[valid] = ~(z > centre_z + float(n_mad) * mad)
    return keep


def hot_pixel_score(
    summed: np.ndarray,
    *,
    centre: tuple[float, float],
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """How hot each pixel looks: (z − median z) / MAD of z, the quantity :func:`hot_pixel_keep`
    compares with ``hot_pixel_mad`` (same ring medians, same ``valid`` statistics), (H, W)
    float64, NaN outside ``valid``.  Larger is hotter; a MAD of 0 counts as the smallest
    positive float (so many pixels may score ``inf``: rank by :func:`ring_excess` instead)."""
    summed = image_2d(summed, name="summed")
    valid = _valid_mask(summed, valid)
    z, centre_z, mad = _ring_z(summed, centre, valid)
    score = np.full(summed.shape, np.nan)
    score[valid] = (z - centre_z) / max(mad, np.finfo(np.float64).tiny)
    return score


def ring_excess(
    summed: np.ndarray,
    *,
    centre: tuple[float, float],
    valid: np.ndarray | None = None,
    level: np.ndarray | None = None,
) -> np.ndarray:
    """z − median z of every ``valid`` pixel, z = (I − m)/√max(m, 1) in Poisson units of its ring
    level m (:func:`ring_level`, or ``level`` (H, W) counts when given), (H, W) float64, NaN
    outside ``valid``.  Ordered as :func:`hot_pixel_score` (which divides it by the MAD of z)
    but always finite, so it ranks pixels even where the MAD of z is 0 (sparse counts)."""
    summed = image_2d(summed, name="summed")
    valid = _valid_mask(summed, valid)
    m = ring_level(summed, centre=centre, valid=valid) if level is None else np.asarray(level, np.float64)[valid]
    z = (summed[valid] - m) / np.sqrt(np.maximum(m, 1.0))
    excess = np.full(summed.shape, np.nan)
    excess[valid] = z - np.median(z)
    return excess


def dead_pixel_keep(summed: np.ndarray, *, centre: tuple[float, float], valid: np.ndarray | None = None,
                    min_level: float = DEAD_PIXEL_MIN_LEVEL) -> np.ndarray:
    """Mask without dead pixels: ``valid`` pixels whose frame sum is 0 while their ring level
    (:func:`ring_level`) is at least ``min_level`` counts (:data:`DEAD_PIXEL_MIN_LEVEL`).
    Where the ring level is lower, a zero is ordinary counting statistics and the pixel is kept."""
    summed = image_2d(summed, name="summed")
    valid = _valid_mask(summed, valid)
    dead = (summed[valid] == 0) & (ring_level(summed, centre=centre, valid=valid) >= float(min_level))
    keep = np.ones(summed.shape, bool)
    keep[valid] = ~dead
    return keep


def centre_sensitive(
    shape: tuple[int, int],
    *,
    centre: tuple[float, float],
    margin: float,
    radial_edges: np.ndarray | None = None,
    box_halfwidths: Sequence[float] = (),
    sectors: Sequence[tuple[float, float]] = (),
) -> np.ndarray:
    """Pixels whose place may change when the centre moves by at most ``margin`` px, (H, W) bool.

    A pixel's distance r from the centre, its L∞ distance max(|x − x_c|, |y − y_c|) and its
    distance to any line through the centre move by at most the centre's shift, so a pixel keeps
    its radial bin (``radial_edges``, px), its side of every box |x − x_c|, |y − y_c| ≤ h
    (``box_halfwidths``: the direct-beam and forward boxes) and its side of every sector border
    (``sectors``, degrees as :func:`sector_keep`) unless that distance lies within ``margin`` of
    a bin edge, of h, or of 0 (a border line; pixels within ``margin`` of the centre count too).
    This function returns those pixels (a superset of the pixels that move)."""
    margin = float(margin) + 1e-9  # rounding of r, |dx|, |dy| near an edge
    dx, dy = pixel_offsets(shape, centre=centre)
    radius = np.hypot(dx, dy)
    sensitive = np.zeros(shape, bool)
    if radial_edges is not None:
        edges = np.asarray(radial_edges, dtype=np.float64)
        index = np.clip(np.searchsorted(edges, radius), 1, edges.size - 1)
        nearest = np.minimum(np.abs(radius - edges[index - 1]), np.abs(edges[index] - radius))
        sensitive |= nearest <= margin
    linf = np.maximum(np.abs(dx), np.abs(dy))
    for halfwidth in box_halfwidths:
        sensitive |= np.abs(linf - float(halfwidth)) <= margin
    for sector in sectors:
        for angle in np.radians([float(a) for a in sector]):
            sensitive |= np.abs(dx * np.sin(angle) - dy * np.cos(angle)) <= margin
    if len(sectors):
        sensitive |= radius <= margin
    return sensitive


def sector_keep(
    shape: tuple[int, int],
    *,
    centre: tuple[float, float],
    sectors: Sequence[tuple[float, float]],
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Mask of the angle sectors (``sectors``, degrees): [a, b] keeps a ≤ φ ≤ b, wrapping through 0
    when a > b; several sectors are OR-ed; an empty list keeps every pixel (``angle_mode`` all).

    φ follows :func:`azimuth_deg` (0° = +x, clockwise).  Each sector must select at least one
    pixel (of ``valid`` when given), otherwise :class:`BadInput` names it.
    """
    phi = azimuth_deg(shape, centre=centre)
    if len(sectors) == 0:
        return np.ones(shape, bool)
    usable = np.ones(shape, bool) if valid is None else np.asarray(valid, bool)
    keep = np.zeros(shape, bool)
    for index, sector in enumerate(sectors):
        try:
            a, b = (float(v) for v in sector)
        except (TypeError, ValueError):
            raise BadInput(f"sectors[{index}] must be a pair [start_deg, end_deg], got {sector!r}") from None
        if not (0.0 <= a <= 360.0 and 0.0 <= b <= 360.0):
            raise BadInput(f"sectors[{index}] = [{a:g}, {b:g}] must lie within [0, 360] degrees")
        selected = (phi >= a) & (phi <= b) if a <= b else (phi >= a) | (phi <= b)
        if not (selected & usable).any():
            raise BadInput(f"sectors[{index}] = [{a:g}, {b:g}] degrees selects no usable pixel around the "
                           f"centre ({centre[0]:.1f}, {centre[1]:.1f}) px")
        keep |= selected
    return keep


@dataclass(frozen=True, kw_only=True)
class DetectorGeometry:
    """Flat detector normal to the beam: wavelength λ (nm), pixel pitch p (mm), distance L (mm),
    given by name (``DetectorGeometry(wavelength_nm=…, pixel_size_mm=…, distance_mm=…)``)."""

    wavelength_nm: float
    pixel_size_mm: float
    distance_mm: float

    def __post_init__(self):
        for name in ("wavelength_nm", "pixel_size_mm", "distance_mm"):
            if not float(getattr(self, name)) > 0:
                raise BadInput(f"geometry.{name} must be > 0, got {getattr(self, name)!r}")

    def two_theta(self, r_px: np.ndarray) -> np.ndarray:
        """2θ = atan(r·p/L), rad."""
        return two_theta_from_radius(r_px, pixel_mm=self.pixel_size_mm, distance_mm=self.distance_mm)

    def q(self, r_px: np.ndarray) -> np.ndarray:
        """q = (4π/λ) sin θ, nm⁻¹, at radius r (px)."""
        return q_from_two_theta(self.two_theta(r_px), wavelength_nm=self.wavelength_nm)

    def radius(self, q: np.ndarray) -> np.ndarray:
        """Radius (px) at which q (nm⁻¹) falls."""
        return radius_from_q(q, pixel_mm=self.pixel_size_mm, distance_mm=self.distance_mm,
                             wavelength_nm=self.wavelength_nm)


def pixel_normalisation(
    shape: tuple[int, int],
    *,
    centre: tuple[float, float],
    geometry: DetectorGeometry,
    solid_angle_correction: bool = False,
    polarisation_factor: float | None = None,
) -> np.ndarray | None:
    """Relative per-pixel normalisation n_i = [ΔΩ_i/ΔΩ_0]·P_i, or None when both are off.

    ΔΩ_i/ΔΩ_0 = cos³2θ_i (``solid_angle_correction``); P_i = ½(1 + cos²2θ − f·cos 2φ·sin²2θ)
    with f = ``polarisation_factor`` in [−1, 1] (pyFAI convention; f = 1: polarised along x).
    Pass it to :meth:`RadialIntegrator.build` as ``pixel_weights``; profiles then read
    Σ counts / Σ n_i per bin.
    """
    if not solid_angle_correction and polarisation_factor is None:
        return None
    tth = geometry.two_theta(pixel_radius(shape, centre=centre))
    norm = np.ones(shape)
    if solid_angle_correction:
        norm *= np.cos(tth) ** 3
    if polarisation_factor is not None:
        f = float(polarisation_factor)
        if not -1.0 <= f <= 1.0:
            raise BadInput(f"polarisation_factor must be in [-1, 1] or None, got {polarisation_factor!r}")
        phi = np.radians(azimuth_deg(shape, centre=centre))
        norm *= 0.5 * (1.0 + np.cos(tth) ** 2 - f * np.cos(2.0 * phi) * np.sin(tth) ** 2)
    return norm


def image_2d(image: np.ndarray, *, name: str) -> np.ndarray:
    """``image`` as a float64 (H, W) array; BadInput naming ``name`` when it is not 2-D."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise BadInput(f"{name} must be a 2-D (H, W) image, got shape {image.shape}")
    return image
