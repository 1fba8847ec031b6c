"""Noise-free bias of the fitted tau and f_q for every binning mode, against the frame count.

Spectral-only expected counts (eqegs_repo.simulate.spectral_only_counts, no noise): rounded
triangle drive of --vmax mm/s, q = 12 nm^-1 (g = cos 2theta), tau = 100 ns, f_q = 0.7, one source
line of 2 Gamma_0, analyser t_A = 3. For each frame count the drive phase phi_0 takes --phases
values spread over one cycle (plus sub-frame offsets), the E spectrum and ISF are computed with
the default settings (n_mc = 100 resamples of Gaussian noise for the weights only) and the
worst and rms bias over the phases are printed. The frame step is the largest energy step
between consecutive frames, in neV.

Run:  python benchmarks/bench_binning_bias.py [--frames 64 128 256 512 1024 2048 4092] [--vmax 10]
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np

from eqegs_repo import simulate as fm
from eqegs_repo.errors import BadInput
from eqegs_repo.kernels import e_spectrum as es
from eqegs_repo.kernels import physics

Q, TAU, F_Q = 12.0, 100.0, 0.7


def biases(n_frames: int, v_max: float, phases: np.ndarray, binning: str) -> tuple[np.ndarray, float]:
    """((tau/tau_true - 1, f_q - f_true) per phase, NaN where the fit fails), frame step in neV."""
    g = es.angle_factor(np.array([physics.two_theta_from_q(Q)]), kind="cos2theta")
    rows = []
    for phase0 in phases:
        velocity = fm.drive_velocity(n_frames, "band_limited_triangle", v_max, phase0=phase0)
        mu_f, mu_q = fm.spectral_only_counts(velocity, Q, F_Q, TAU, forward_counts=2e5 * 4092 / n_frames,
                                             qe_counts=2e4 * 4092 / n_frames)
        try:
            spectra = es.energy_spectra(mu_f, mu_f, mu_q[:, None], mu_q[:, None], np.array([Q]), g, velocity,
                                        q_min=10.0, q_max=14.0, binning=binning)
            fit = es.isf_from_spectra(spectra, n_mc=100, seed=1).fit
            rows.append((fit.tau_ns / TAU - 1.0, fit.f_q - F_Q))
        except BadInput:
            rows.append((np.nan, np.nan))
    step = float(np.max(np.abs(np.diff(physics.KAPPA_NEV_PER_MM_S * fm.drive_velocity(n_frames, v_max=v_max)))))
    return np.array(rows), step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048, 4092])
    parser.add_argument("--vmax", type=float, default=10.0, help="drive amplitude, mm/s")
    parser.add_argument("--phases", type=int, default=20, help="drive phases per frame count")
    args = parser.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)
    rng = np.random.default_rng(0)
    print(f"noise-free bias, rounded triangle of {args.vmax:g} mm/s, tau = {TAU:g} ns, f_q = {F_Q}, "
          f"q = {Q:g} nm^-1; {args.phases} drive phases per row (worst | rms over the phases)")
    print("| frames | frame step (neV) | binning | tau bias, worst | tau bias, rms | f_q bias, worst | f_q bias, rms |")
    print("|---|---|---|---|---|---|---|")
    for n_frames in args.frames:
        phases = (np.arange(args.phases) + rng.uniform(0, 1, args.phases)) / args.phases
        for binning in es.BINNING_MODES:
            rows, step = biases(n_frames, args.vmax, phases, binning)
            tau, f_q = rows[:, 0], rows[:, 1]
            failed = int(np.isnan(tau).sum())

            worst_tau, rms_tau = tau[np.nanargmax(np.abs(tau))], np.sqrt(np.nanmean(tau ** 2))
            tau_text = (f"{100 * worst_tau:+.2f} % | {100 * rms_tau:.2f} %" if abs(worst_tau) < 10
                        else "> 1000 % (a fit diverges) | -")
            print(f"| {n_frames} | {step:.1f} | {binning} | {tau_text} | {f_q[np.nanargmax(np.abs(f_q))]:+.4f} | "
                  f"{np.sqrt(np.nanmean(f_q ** 2)):.4f} |" + (f" {failed} of {len(tau)} fits failed" if failed else ""))


if __name__ == "__main__":
    main()
