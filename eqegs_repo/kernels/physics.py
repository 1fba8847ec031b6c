"""Physical constants and detector-geometry conversions shared by the kernels and the simulator.

Everything here is a plain number or a numpy-in, numpy-out function (docs/physics.md,
section "Constants and conversions"). Units: energy in neV unless a name says keV, velocity in
mm/s, time in ns, q in nm⁻¹, lengths in mm, angles in radians, radii in pixels. The conversions
take the data array positionally and the geometry by name (``pixel_mm`` and ``distance_mm`` are
both lengths in mm: swapped positionally they would give a wrong answer without an error).
"""
from __future__ import annotations

import numpy as np

# Constants
ENERGY_KEV = 14.4125
"""57Fe resonance energy E₀ in keV."""
KAPPA_NEV_PER_MM_S = 48.075
"""Doppler factor κ = E₀/c in neV per (mm/s)."""


GAMMA0_NEV = 4.665
"""Natural linewidth Γ₀ (FWHM) of the 14.4 keV level in neV."""
H_NEV_NS = 4135.667696
"""Planck constant h in neV·ns."""
HBAR_NEV_NS = H_NEV_NS / (2.0 * np.pi)
"""Reduced Planck constant ħ in neV·ns (≈ 658.212)."""
WAVELENGTH_NM = 0.086025
"""Wavelength λ = hc/E₀ of 14.4125 keV photons, nm."""
PIXEL_SIZE_MM = 0.0726
"""CITIUS pixel pitch, mm."""
HC_KEV_NM = 1.239841984
"""h·c in keV·nm (CODATA): λ = HC_KEV_NM / E."""


def two_theta_from_radius(r_px: np.ndarray, *, pixel_mm: float, distance_mm: float) -> np.ndarray:
    """Scattering angle 2θ = atan(r·p/L), rad (flat detector normal to the beam)."""
    return np.arctan(np.asarray(r_px, dtype=np.float64) * float(pixel_mm) / float(distance_mm))


def q_from_two_theta(two_theta: np.ndarray, *, wavelength_nm: float = WAVELENGTH_NM) -> np.ndarray:
    """q = (4π/λ)·sin θ, nm⁻¹."""
    return 4.0 * np.pi / float(wavelength_nm) * np.sin(0.5 * np.asarray(two_theta, dtype=np.float64))


def two_theta_from_q(q: np.ndarray, *, wavelength_nm: float = WAVELENGTH_NM) -> np.ndarray:
    """Inverse of :func:`q_from_two_theta`: 2θ = 2·asin(qλ/4π), rad."""
    s = np.asarray(q, dtype=np.float64) * float(wavelength_nm) / (4.0 * np.pi)
    if np.any(np.abs(s) > 1):
        raise ValueError(f"q beyond 4π/λ = {4 * np.pi / wavelength_nm:.1f} nm⁻¹ is not reachable")
    return 2.0 * np.arcsin(s)


def radius_from_q(q: np.ndarray, *, pixel_mm: float, distance_mm: float,
                  wavelength_nm: float = WAVELENGTH_NM) -> np.ndarray:
    """Radius in pixels at which q (nm⁻¹) falls: r = L·tan 2θ / p."""
    return float(distance_mm) * np.tan(two_theta_from_q(q, wavelength_nm=wavelength_nm)) / float(pixel_mm)


def solid_angle(two_theta: np.ndarray, *, pixel_mm: float, distance_mm: float) -> np.ndarray:
    """Pixel solid angle ΔΩ = (p/L)²·cos³2θ, sr (flat detector normal to the beam)."""
    return (float(pixel_mm) / float(distance_mm)) ** 2 * np.cos(np.asarray(two_theta, dtype=np.float64)) ** 3

