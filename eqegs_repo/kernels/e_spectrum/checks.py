"""Checks where the physics cannot hold (docs/physics.md#checks-where-the-physics-cannot-hold):
the energy step against the line widths, the energy window against the quasi-elastic line, the
frames left after the cuts, and F(0) against the fitted f_q.

A check never changes a number; it says whether the conditions under which the E spectrum and
ISF give τ and f_q without bias hold, with the value it measured and the threshold it used.
The thresholds are keyword parameters (the ``e_spectrum.check_*`` spice fields); the bias table
that justifies their defaults is printed by ``benchmarks/bench_physics_checks.py``.

Units: energy in neV, τ in ns.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.e_spectrum.isf import IsfResult
from eqegs_repo.kernels.e_spectrum.spectra import EnergySpectra
from eqegs_repo.kernels.physics import HBAR_NEV_NS

MAX_STEP_PER_RESOLUTION = 0.3
"""Default largest energy step as a fraction of the resolution width W_res."""
MAX_STEP_PER_LINE_WIDTH = 1.0
"""Default largest energy step as a fraction of the line width Γ = 2ħ/τ."""
MIN_WINDOW_RATIO = 5.0
"""Default smallest window half-width E_half / W_qe (W_qe the width of the quasi-elastic line)."""
MIN_KEPT_FRAMES = 50
"""Default smallest number of frames left after the cuts."""
MAX_F0_PULL = 4.0
"""Default largest |F(0) − f_q| in units of its error."""

CHECK_NAMES = ("energy_step", "window", "kept_frames", "f0_vs_f_q")
"""The checks, in the order they are made."""


@dataclass(frozen=True)
class CheckResult:
    """One check: ``name`` (:data:`CHECK_NAMES`), whether it ``failed``, the ``value`` it
    measured, the ``threshold`` it compared with (``value`` must stay at most a ``max`` or at
    least a ``min`` threshold: ``bound``), a ``message`` saying what was found and what to do,
    and the inputs of ``value`` (``details``). A check that cannot be made (no fit for the F(0)
    check) has ``value`` None and never fails."""

    name: str
    failed: bool
    value: float | None
    threshold: float
    bound: str
    message: str
    details: dict

    def as_dict(self) -> dict:
        """JSON-ready record (the form of ``attrs["physics_checks"]``)."""
        return {"name": self.name, "failed": self.failed, "value": self.value, "threshold": self.threshold,
                "bound": self.bound, "message": self.message, "details": dict(self.details)}


def line_fwhm(energy: np.ndarray, s: np.ndarray) -> float:
    """Full width at half maximum of the highest line of a convex spectrum s(E) = 1 − y/b, neV.

    ``energy`` (K,) neV, ``s`` (K,). From the highest point outwards, the first points below
    half its height on each side, with the crossing interpolated linearly; a side that never
    drops below half counts to the end of the window. NaN when the spectrum has no positive
    maximum.
    """
    e, s = np.asarray(energy, dtype=np.float64), np.asarray(s, dtype=np.float64)
    peak = int(np.nanargmax(s))
    top = float(s[peak])
    if not top > 0:
        return float("nan")
    half = 0.5 * top

    def crossing(indices):
        previous = peak
        for i in indices:
            if s[i] < half:
                return e[previous] + (half - s[previous]) * (e[i] - e[previous]) / (s[i] - s[previous])
            previous = i
        return e[previous]

    return float(crossing(range(peak + 1, e.size)) - crossing(range(peak - 1, -1, -1)))


def line_width_from_tau(*, tau_ns: float) -> float:
    """FWHM Γ = 2ħ/τ (neV) of the Lorentzian whose transform is exp(−t/τ), τ in ns."""
    return 2.0 * HBAR_NEV_NS / float(tau_ns)


def physics_checks(
    spectra: EnergySpectra,
    isf: IsfResult,
    *,
    max_step_per_resolution: float = MAX_STEP_PER_RESOLUTION,
    max_step_per_line_width: float = MAX_STEP_PER_LINE_WIDTH,
    min_window_ratio: float = MIN_WINDOW_RATIO,
    min_kept_frames: int = MIN_KEPT_FRAMES,
    max_f0_pull: float = MAX_F0_PULL,
) -> tuple[CheckResult, ...]:
    """The four checks of one E spectrum and ISF (docs/physics.md#checks-where-the-physics-cannot-hold).

    The widths: W_res, the FWHM of the forward (resolution) line of the convex forward spectrum;
    Γ = 2ħ/τ from the fitted τ (0 without a fit); W_qe = W_res + Γ, the width of the
    quasi-elastic line (Lorentzian widths add).

    1. ``energy_step``: ΔE ≤ min(``max_step_per_resolution``·W_res, ``max_step_per_line_width``·Γ)
       (without a fit: the first bound only); value and threshold in neV;
    2. ``window``: E_half / W_qe ≥ ``min_window_ratio``, E_half = K·ΔE/2 the half-width of the
       energy window;
    3. ``kept_frames``: the frames left after the start, turn-around and guard cuts ≥
       ``min_kept_frames``;
    4. ``f0_vs_f_q``: |F(0) − r·f_q| / √(σ_F(0)² + (r·σ_f_q)²) ≤ ``max_f0_pull`` (not made
       without a fit), with r = (1 − 2W_qe/(πE_half)) / (1 − 2W_res/(πE_half)): F(0) = A_q/A₀ is the
       ratio of the two lines' areas within the window, and a window of finite width, its
       background set on the tails, keeps a share 1 − 2W/(πE_half) of a Lorentzian line's area.
    """
    for name, value in (("max_step_per_resolution", max_step_per_resolution),
                        ("max_step_per_line_width", max_step_per_line_width), ("min_window_ratio", min_window_ratio),
                        ("min_kept_frames", min_kept_frames), ("max_f0_pull", max_f0_pull)):
        if isinstance(value, bool) or not np.isfinite(float(value)) or not float(value) > 0:
            raise BadInput(f"physics check threshold {name} must be a number > 0, got {value!r}")
    grid, fit = spectra.grid, isf.fit
    energy = grid.centres
    w_res = line_fwhm(energy, isf.forward.convex)
    gamma = line_width_from_tau(tau_ns=fit.tau_ns) if fit is not None and fit.tau_ns > 0 else None
    widths = {"resolution_fwhm_nev": w_res, "line_fwhm_nev": gamma}
    step = float(grid.step_nev)
    bounds = {"resolution": float(max_step_per_resolution) * w_res}
    if gamma is not None:
        bounds["line width"] = float(max_step_per_line_width) * gamma
    limit = min(bounds.values())
    binding = min(bounds, key=bounds.get)
    half = 0.5 * grid.n_points * grid.step_nev
    w_qe = w_res + (gamma or 0.0)
    window_ratio = half / w_qe
    kept = int(np.count_nonzero(spectra.kept_frames))
    step_failed = bool(not step <= limit)
    window_failed = bool(not window_ratio >= min_window_ratio)
    frames_failed = bool(kept < min_kept_frames)
    checks = [
        CheckResult("energy_step", step_failed, step, float(limit), "max",
                    f"energy step {step:.3g} neV {'>' if step_failed else '<='} {limit:.3g} neV "
                    f"({_bound_text(bounds, widths)}; the {binding} binds)"
                    + (": the spectra are undersampled and τ, f_q biased; record more frames per drive cycle "
                       "or a smaller velocity range" if step_failed else ""),
                    dict(widths, step_per_resolution=step / w_res,
                         step_per_line_width=step / gamma if gamma is not None else None,
                         max_step_per_resolution=float(max_step_per_resolution),
                         max_step_per_line_width=float(max_step_per_line_width))),
        CheckResult("window", window_failed, float(window_ratio), float(min_window_ratio), "min",
                    f"energy window ±{half:.3g} neV is {window_ratio:.2f} quasi-elastic line widths "
                    f"({w_qe:.3g} neV; at least {min_window_ratio:g})"
                    + (": the window cuts the line's tails and biases τ low and f_q high; widen the drive's "
                       "velocity range" if window_failed else ""),
                    dict(widths, half_width_nev=float(half), qe_fwhm_nev=float(w_qe))),
        CheckResult("kept_frames", frames_failed, float(kept), float(min_kept_frames), "min",
                    f"{kept} of {spectra.kept_frames.size} frames are left after the cuts (at least "
                    f"{min_kept_frames:g})"
                    + ("; relax the start, turn-around or guard cuts or record more frames" if frames_failed else ""),
                    {"frames": int(spectra.kept_frames.size), "kept_frames": kept}),
    ]
    if fit is None:
        checks.append(CheckResult("f0_vs_f_q", False, None, float(max_f0_pull), "max",
                                  "no fit (fit_model 'none'): F(0) is not compared with f_q", {}))
    else:
        f0, f0_error = float(isf.isf[0]), float(isf.isf_error[0])
        kept_share = _window_share(w_qe, half) / max(_window_share(w_res, half), 1e-12)
        expected = float(fit.f_q) * kept_share
        error = float(np.hypot(f0_error, fit.f_q_error * kept_share))
        pull = abs(f0 - expected) / error if error > 0 else (0.0 if f0 == expected else float("inf"))
        f0_failed = bool(not pull <= max_f0_pull)
        checks.append(CheckResult(
            "f0_vs_f_q", f0_failed, float(pull), float(max_f0_pull), "max",
            f"F(0) = {f0:.4g} differs from {expected:.4g} (the fitted f_q = {fit.f_q:.4g} times {kept_share:.4f}, "
            f"the share of the line areas the window keeps) by {pull:.1f} of its error (at most {max_f0_pull:g})"
            + (": a relaxation faster than the first ISF point, a background or normalisation problem "
               "(relax_bg_coeff), a truncated line or a model that does not fit" if f0_failed else ""),
            {"f0": f0, "f0_error": f0_error, "f_q": float(fit.f_q), "f_q_error": float(fit.f_q_error),
             "window_share": float(kept_share), "f0_expected": expected}))
    return tuple(checks)


def _window_share(fwhm, half):
    """The share of a Lorentzian line's area (FWHM ``fwhm``) that a window of ±``half`` keeps when
    its background is taken at the window's edges: 1 − 2W/(πE_half) (the tails beyond the window,
    W/(πE_half), and as much again taken away by a baseline set on the tails; ≥ 0)."""
    return max(1.0 - 2.0 * float(fwhm) / (np.pi * float(half)), 0.0)


def _bound_text(bounds, widths):
    parts = [f"{bounds['resolution']:.3g} = {bounds['resolution'] / widths['resolution_fwhm_nev']:g} x the "
             f"resolution width {widths['resolution_fwhm_nev']:.3g} neV"]
    if "line width" in bounds:
        parts.append(f"{bounds['line width']:.3g} = {bounds['line width'] / widths['line_fwhm_nev']:g} x the line "
                     f"width 2hbar/tau {widths['line_fwhm_nev']:.3g} neV")
    return "; ".join(parts)
