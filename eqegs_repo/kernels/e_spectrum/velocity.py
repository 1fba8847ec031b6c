"""Velocity and angle calibrations, energy axes and frame selection of the E-spectrum step
(docs/physics.md#energy-spectrum-and-isf).

Units: velocity v in mm/s, energy E in neV, angles 2θ in rad. Per-frame arrays are (frames,).
The built-in kinds of the ``velocity_calibration`` / ``angle_calibration`` records are
:func:`calibrated_velocity` and :func:`angle_factor`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.physics import KAPPA_NEV_PER_MM_S

VELOCITY_KINDS = ("triangle", "sine", "poly", "table")
ANGLE_KINDS = ("none", "cos2theta", "table")


def calibrated_velocity(
    measured: np.ndarray | None = None,
    *,
    kind: str,
    n_frames: int,
    v_max: float = 10.0,
    phase_frames: float = 0.0,
    period_frames: float | None = None,
    poly_coeffs: Sequence[float] = (),
    table_mm_s: Sequence[float] = (),
) -> np.ndarray:
    """Doppler velocity v_f of every frame, mm/s, shape (n_frames,) (built-in calibration kinds).

    With φ_f = (f + ½ − ``phase_frames``)/``period_frames`` (period None → ``n_frames``):
    ``"triangle"``: v = v_max·(4|(φ mod 1) − ½| − 1) (+v_max at φ = 0, −v_max at φ = ½);
    ``"sine"``: v = v_max·cos 2πφ; ``"poly"``: v = Σ_k c_k·w_f^k on the ``measured`` waveform w
    (``poly_coeffs`` lowest power first); ``"table"``: ``table_mm_s`` holds v_f for every frame.
    (The forward model's phase φ₀ corresponds to ``phase_frames`` = −φ₀·n_frames.)  The velocity
    offset v₀ is applied later, in :func:`energy_from_velocity`.
    """
    n_frames = int(n_frames)
    if kind in ("triangle", "sine"):
        if not float(v_max) > 0:
            raise BadInput(f"velocity calibration v_max must be > 0 mm/s, got {v_max!r}")
        period = float(n_frames if period_frames is None else period_frames)
        if not period > 0:
            raise BadInput(f"velocity calibration period_frames must be > 0, got {period_frames!r}")
        phase = (np.arange(n_frames) + 0.5 - float(phase_frames)) / period
        if kind == "triangle":
            return float(v_max) * (4.0 * np.abs(np.mod(phase, 1.0) - 0.5) - 1.0)
        return float(v_max) * np.cos(2.0 * np.pi * phase)
    if kind == "poly":
        if measured is None or np.shape(measured) != (n_frames,):
            raise BadInput(f"velocity calibration 'poly' needs the measured waveform of shape ({n_frames},), "
                           f"got {None if measured is None else np.shape(measured)}")
        if len(poly_coeffs) == 0:
            raise BadInput("velocity calibration 'poly' needs poly_coeffs (lowest power first), got none")
        return np.polynomial.polynomial.polyval(np.asarray(measured, dtype=np.float64), np.asarray(poly_coeffs, dtype=np.float64))
    if kind == "table":
        table = np.asarray(table_mm_s, dtype=np.float64)
        if table.shape != (n_frames,):
            raise BadInput(f"velocity calibration 'table' needs table_mm_s with one velocity per frame "
                           f"({n_frames}), got {table.size}")
        return table.copy()
    raise BadInput(f"velocity calibration kind must be one of {VELOCITY_KINDS}, got {kind!r}")


def angle_factor(two_theta: np.ndarray, *, kind: str, table: Sequence[Sequence[float]] = ()) -> np.ndarray:
    """Energy-scale factor g(2θ) per q bin (``angle_calibration``): ``"none"`` → 1,
    ``"cos2theta"`` → cos 2θ, ``"table"`` → linear interpolation of [2θ in deg, g] pairs.
    ``two_theta`` in rad, any shape."""
    two_theta = np.asarray(two_theta, dtype=np.float64)
    if kind == "none":
        return np.ones_like(two_theta)
    if kind == "cos2theta":
        return np.cos(two_theta)
    if kind == "table":
        pairs = np.asarray(table, dtype=np.float64)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.shape[0] < 1:
            raise BadInput(f"angle calibration 'table' needs [two_theta_deg, factor] pairs, got {table!r}")
        order = np.argsort(pairs[:, 0])
        return np.interp(np.degrees(two_theta), pairs[order, 0], pairs[order, 1])
    raise BadInput(f"angle calibration kind must be one of {ANGLE_KINDS}, got {kind!r}")


def energy_from_velocity(velocity: np.ndarray, *, v0_offset: float = 0.0, g: float | np.ndarray = 1.0) -> np.ndarray:
    """Linear transform to energy: E = κ·(v − v₀)·g in neV (κ = 48.075 neV per mm/s).

    ``velocity`` (frames,) mm/s; scalar g gives (frames,), g of shape (bins,) gives (frames, bins).
    """
    shifted = KAPPA_NEV_PER_MM_S * (np.asarray(velocity, dtype=np.float64) - float(v0_offset))
    g = np.asarray(g, dtype=np.float64)
    return shifted * g if g.ndim == 0 else shifted[:, None] * g[None, :]


def sweep_labels(velocity: np.ndarray) -> np.ndarray:
    """Index of the monotonic sweep each frame belongs to, (frames,) int.

    Turning points are the frames of largest |v| between successive crossings of +½·max|v| and
    −½·max|v| (a hysteresis), so noise on a measured waveform cannot create false sweeps.
    """
    return np.searchsorted(turning_points(velocity), np.arange(np.size(velocity)), side="right")


def turning_points(velocity: np.ndarray) -> np.ndarray:
    """Frame indices of the velocity extrema (see :func:`sweep_labels`), increasing. BadInput
    when ``velocity`` holds NaN/inf or one value for every frame (no sweep to find)."""
    v = np.asarray(velocity, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(v))
    if bad.size:
        raise BadInput(f"velocity must be finite mm/s; frame {bad[0]} holds {v[bad[0]]} "
                       f"({bad.size} of {v.size} values are NaN or infinite)")
    if v.size and np.ptp(v) == 0:
        raise BadInput(f"velocity must vary over the frames (a sweep); all {v.size} values are {v[0]:g} mm/s")
    level = 0.5 * np.max(np.abs(v))
    side = np.where(v > level, 1, np.where(v < -level, -1, 0))
    marked = np.flatnonzero(side)
    # hysteresis: every frame belongs to the side (+ or −) it last crossed into
    state = side[marked][np.clip(np.searchsorted(marked, np.arange(v.size), side="right") - 1, 0, None)]
    bounds = np.r_[0, np.flatnonzero(np.diff(state)) + 1, v.size]
    return np.array([a + int(np.argmax(np.abs(v[a:b]))) for a, b in zip(bounds[:-1], bounds[1:])], dtype=np.int64)


def frame_selection(
    velocity: np.ndarray, *, start_cut_frames: int = 5, turnaround_cut_frac: float = 0.9,
    turnaround_guard_frames: int = 0,
) -> np.ndarray:
    """Frames used for the spectra, (frames,) bool: not among the first ``start_cut_frames``
    (START_CUT_FRAMES), |v| ≤ ``turnaround_cut_frac``·max|v|, and more than
    ``turnaround_guard_frames`` frames away from every velocity extremum."""
    v = np.asarray(velocity, dtype=np.float64)
    n = v.size
    if not 0 <= int(start_cut_frames) < n:
        raise BadInput(f"start_cut_frames must be in [0, {n}) for {n} frames, got {start_cut_frames!r}")
    if not 0.0 < float(turnaround_cut_frac) <= 1.0:
        raise BadInput(f"turnaround_cut_frac must be in (0, 1], got {turnaround_cut_frac!r}")
    if int(turnaround_guard_frames) < 0:
        raise BadInput(f"turnaround_guard_frames must be >= 0, got {turnaround_guard_frames!r}")
    keep = np.abs(v) <= float(turnaround_cut_frac) * np.max(np.abs(v))
    keep[: int(start_cut_frames)] = False
    guard = int(turnaround_guard_frames)
    for turn in turning_points(v) if guard else ():
        keep[max(turn - guard, 0): turn + guard + 1] = False
    return keep
