"""The velocity drive of the synthetic measurement: frame phases and waveforms (docs/physics.md#forward-model).

Pure functions, numpy in, numpy out; velocity in mm/s, phase in cycles.
"""
from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------------------------
# Drive waveform (docs/physics.md#forward-model, drive)
# --------------------------------------------------------------------------------------------
WAVEFORMS = ("triangle", "band_limited_triangle", "sine")


def frame_phase(n_frames: int, phase0: float = 0.0) -> np.ndarray:
    """Phase φ_f = (f + ½)/N_f + φ₀ of each frame inside the velocity cycle.

    Returns float64 array of shape (n_frames,), in cycles (not wrapped into [0, 1)).
    """
    if int(n_frames) < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames!r}")
    return (np.arange(int(n_frames), dtype=np.float64) + 0.5) / int(n_frames) + float(phase0)


def triangle_wave(phase: np.ndarray, v_max: float) -> np.ndarray:
    """Constant-acceleration drive: v(φ) = V_max·(4·|(φ mod 1) − ½| − 1), mm/s.

    +V_max at φ = 0, −V_max at φ = ½.  ``phase`` in cycles, any shape.
    """
    return float(v_max) * (4.0 * np.abs(np.mod(phase, 1.0) - 0.5) - 1.0)


def band_limited_triangle_wave(phase: np.ndarray, v_max: float, n_harmonics: int = 12) -> np.ndarray:
    """Triangle with rounded turn-arounds: the first ``n_harmonics`` odd harmonics, mm/s.

    v(φ) = V_max·(8/π²)·Σ_{k odd ≤ 2K−1} cos(2πkφ)/k².  This is the Fourier series of
    :func:`triangle_wave` (same sign: +V_max at φ = 0); a series in cos(2πk(φ−½)) gives the
    same curve negated (odd k only flip the sign).  Because the series is truncated, the
    extremes are slightly below V_max (0.983·V_max for K = 12).
    """
    if int(n_harmonics) < 1:
        raise ValueError(f"n_harmonics must be >= 1, got {n_harmonics!r}")
    phase = np.asarray(phase, dtype=np.float64)
    total = np.zeros_like(phase)
    for k in range(1, 2 * int(n_harmonics), 2):
        total += np.cos(2.0 * np.pi * k * phase) / k**2
    return float(v_max) * (8.0 / np.pi**2) * total


def sine_wave(phase: np.ndarray, v_max: float) -> np.ndarray:
    """Sinusoidal drive v(φ) = V_max·cos(2πφ), mm/s (φ already includes the phase offset φ₀)."""
    return float(v_max) * np.cos(2.0 * np.pi * np.asarray(phase, dtype=np.float64))


def drive_velocity(
    n_frames: int,
    waveform: str = "band_limited_triangle",
    v_max: float = 10.0,
    n_harmonics: int = 12,
    phase0: float = 0.0,
    offset: float = 0.0,
    nonlinearity: float = 0.0,
) -> np.ndarray:
    """True Doppler velocity v_f of every frame, mm/s, shape (n_frames,).

    ``waveform`` is one of ``WAVEFORMS``.  The shape v is first distorted by the mild
    nonlinearity v → v·(1 + ε·v/V_max) (ε = ``nonlinearity``), then the zero offset v₀
    (``offset``, mm/s) is added.
    """
    if waveform not in WAVEFORMS:
        raise ValueError(f"waveform must be one of {WAVEFORMS}, got {waveform!r}")
    if not v_max > 0:
        raise ValueError(f"v_max must be > 0 mm/s, got {v_max!r}")
    phase = frame_phase(n_frames, phase0)
    if waveform == "triangle":
        v = triangle_wave(phase, v_max)
    elif waveform == "sine":
        v = sine_wave(phase, v_max)
    else:
        v = band_limited_triangle_wave(phase, v_max, n_harmonics)
    return v * (1.0 + float(nonlinearity) * v / float(v_max)) + float(offset)


def measured_waveform(
    velocity: np.ndarray, gain: float, noise_sigma: float, rng: np.random.Generator
) -> np.ndarray:
    """The recorded drive signal ("input velocity waveform"): v_f·gain + N(0, noise_sigma²).

    ``velocity`` in mm/s, shape (n_frames,); result float64 of the same shape, in the units of
    the recorder (mm/s when gain = 1).  Consumes ``velocity.size`` normal deviates of ``rng``.
    """
    velocity = np.asarray(velocity, dtype=np.float64)
    return velocity * float(gain) + float(noise_sigma) * rng.standard_normal(velocity.shape)


