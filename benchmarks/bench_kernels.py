"""Speed of the E spectrum and ISF kernels at full size (issue 5 targets).

Prints the time of E spectrum + ISF with ``--mc`` Monte-Carlo resamples for 4092 frames.
Q integration has its own benchmark: benchmarks/bench_q_integration.py.

Run:  python benchmarks/bench_kernels.py [--mc 500]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from eqegs_repo import simulate as fm
from eqegs_repo.kernels import e_spectrum as es
from eqegs_repo.kernels import physics


def e_spectrum_time(n_frames: int, n_mc: int) -> tuple[float, float, es.IsfResult]:
    """Seconds for energy_spectra and for isf_from_spectra on a 60-bin q range."""
    velocity = fm.drive_velocity(n_frames, "band_limited_triangle", 10.0)
    q = np.linspace(10.0, 14.0, 60)
    mu_f, mu_q = fm.spectral_only_counts(velocity, q, 0.7, 100.0, forward_counts=2e5, qe_counts=2e4 / q.size)
    rng = np.random.default_rng(0)
    forward, qe = rng.poisson(mu_f).astype(float), rng.poisson(mu_q).astype(float)
    g = es.angle_factor(physics.two_theta_from_q(q), kind="cos2theta")
    start = time.perf_counter()
    spectra = es.energy_spectra(forward, forward, qe, qe, q, g, velocity, q_min=10.0, q_max=14.0)
    middle = time.perf_counter()
    result = es.isf_from_spectra(spectra, n_mc=n_mc, seed=1, isf_error_threshold=0.03)
    return middle - start, time.perf_counter() - middle, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mc", type=int, default=500, help="Monte-Carlo resamples")
    args = parser.parse_args()

    spectra_s, isf_s, result = e_spectrum_time(4092, args.mc)
    fit = result.fit
    print(f"E spectrum (4092 frames, 60 q bins): {spectra_s * 1e3:.0f} ms; ISF + {args.mc} MC + fit: {isf_s * 1e3:.0f} ms "
          f"(tau = {fit.tau_ns:.1f} +- {fit.tau_error_ns:.1f} ns, f = {fit.f_q:.3f} +- {fit.f_q_error:.3f})")


if __name__ == "__main__":
    main()
