"""The bias table behind the physics checks (docs/physics.md#checks-where-the-physics-cannot-hold).

Noise-free expected counts of the project's simulator (eqegs_repo.simulate.spectral_only_counts:
one source line of 2 Gamma_0, analyser t_A = 3, q = 12 nm^-1 with g = cos 2theta, f_q = 0.7, a
rounded triangle drive) go through the E spectrum and ISF kernels with the default settings, and
each row prints the fitted tau and f_q bias (worst over --phases drive phases) next to the quantity
a check tests, as measured by the check itself (eqegs_repo.kernels.e_spectrum.checks):

* energy step: +-10 mm/s, frame counts 96..4092, tau 30, 100, 300 ns -> Delta E / min(W_res, Gamma);
* window: a step near 2 neV, drive amplitudes 1.5..10 mm/s -> E_half / W_qe;
* kept frames: +-4 mm/s, frame counts 24..512 (the step and window checks computed too) ->
  kept frames, with the spread of tau/sigma_tau over --noisy Poisson realisations at 2e4 counts
  per frame and q bin (whether the quoted errors hold);
* F(0) against f_q: sound and biased setups (the window, the step, relax_bg_coeff, a flat
  background, KWW data fitted as one exponential): the noise-free F(0) - f_q and F(0) - r f_q
  (r the share of the line areas the window keeps), and the pull the check computes over --noisy
  Poisson realisations.

With --full DIR it also cooks the default full-size sample of benchmarks/make_full_tree.py (built
there first when DIR holds no tree; 9 GB, minutes) and prints the checks that fired
("checks: none fired" when none did).

Run:  python benchmarks/bench_physics_checks.py [--phases 6] [--noisy 100] [--only step window frames f0]
      python benchmarks/bench_physics_checks.py --only --full /scratch/eqegs-full   (the full-size sample alone)
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import warnings

import numpy as np

from eqegs_repo import simulate as fm
from eqegs_repo.errors import BadInput, PhysicsWarning
from eqegs_repo.kernels import e_spectrum as es
from eqegs_repo.kernels import physics

Q, F_Q = 12.0, 0.7
G = es.angle_factor(np.array([physics.two_theta_from_q(Q)]), kind="cos2theta")


def one(n_frames, v_max, tau, phase0, *, noise=None, counts=2e4, beta=1.0, flat_background=0.0, **isf_options):
    """(tau bias, f_q bias, checks by name, fit, isf) of one E spectrum and ISF; None when it fails."""
    velocity = fm.drive_velocity(n_frames, "band_limited_triangle", v_max, phase0=phase0)
    mu_f, mu_q = fm.spectral_only_counts(velocity, Q, F_Q, tau, beta=beta, forward_counts=10 * counts,
                                         qe_counts=counts, flat_background=flat_background)
    if noise is not None:
        mu_f, mu_q = noise.poisson(mu_f).astype(float), noise.poisson(mu_q).astype(float)
    try:
        spectra = es.energy_spectra(mu_f, mu_f, mu_q[:, None], mu_q[:, None], np.array([Q]), G, velocity,
                                    q_min=10.0, q_max=14.0)
        isf = es.isf_from_spectra(spectra, n_mc=100, seed=1, **isf_options)
    except BadInput:
        return None
    if isf.fit is None:
        return None
    checks = {c.name: c for c in es.physics_checks(spectra, isf)}
    return isf.fit.tau_ns / tau - 1.0, isf.fit.f_q - F_Q, checks, isf.fit, isf


def worst(values):
    values = np.asarray(values, dtype=float)
    return values[np.nanargmax(np.abs(values))] if np.isfinite(values).any() else np.nan


def scan(rows, phases, label_of):
    """Print one table row per (n_frames, v_max, tau): the checks' quantities and the worst bias."""
    for n_frames, v_max, tau in rows:
        results = [r for r in (one(n_frames, v_max, tau, p) for p in phases) if r is not None]
        if not results:
            print(f"| {n_frames} | {v_max:g} | {tau:g} | every fit failed |")
            continue
        checks = results[0][2]
        tau_bias, f_bias = worst([r[0] for r in results]), worst([r[1] for r in results])
        f0_diff = worst([r[2]["f0_vs_f_q"].details["f0"] - r[2]["f0_vs_f_q"].details["f0_expected"] for r in results])
        fired = ", ".join(n for n, c in checks.items() if c.failed) or "none"
        print(f"| {n_frames} | {v_max:g} | {tau:g} | {label_of(checks)} | {100 * tau_bias:+.2f} % | "
              f"{f_bias:+.4f} | {f0_diff:+.4f} | {fired} |")


def step_table(phases):
    print("\n## energy step: +-10 mm/s, frame count varied (default thresholds; worst over the phases)")
    print("| frames | v_max (mm/s) | tau (ns) | step (neV) | W_res (neV) | Gamma (neV) | step / W_res | step / Gamma | "
          "tau bias | f_q bias | F(0) - r f_q | checks fired |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")

    def label(c):
        d = c["energy_step"].details
        return (f"{c['energy_step'].value:.2f} | {d['resolution_fwhm_nev']:.1f} | {d['line_fwhm_nev']:.1f} | "
                f"{d['step_per_resolution']:.3f} | {d['step_per_line_width']:.2f}")
    scan([(n, 10.0, tau) for tau in (30.0, 100.0, 300.0) for n in (128, 192, 256, 384, 512, 768, 1024, 2048)],
         phases, label)


def window_table(phases):
    print("\n## window: step near 2 neV, drive amplitude varied")
    print("| frames | v_max (mm/s) | tau (ns) | E_half (neV) | W_qe (neV) | window ratio | tau bias | f_q bias | "
          "F(0) - r f_q | checks fired |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    def label(c):
        d = c["window"].details
        return f"{d['half_width_nev']:.0f} | {d['qe_fwhm_nev']:.1f} | {c['window'].value:.2f}"
    rows = [(int(round(v * 1024 / 5.0 / 4)) * 4, v, tau) for tau in (30.0, 100.0, 300.0)
            for v in (1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)]
    scan(rows, phases, label)


def frames_table(phases, n_noisy):
    print(f"\n## kept frames: +-4 mm/s, tau 100 ns; pull spread = std of (tau - truth)/sigma_tau over {n_noisy} "
          "Poisson realisations at 2e4 counts per frame")
    print("| frames | v_max (mm/s) | tau (ns) | kept frames | step (neV) | step / W_res | window ratio | tau bias | "
          "f_q bias | F(0) - r f_q | checks fired | tau pull spread | tau pull mean | F(0) pull spread | median sigma_tau |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(7)
    for n_frames in (24, 32, 48, 64, 96, 128, 256, 512):
        results = [r for r in (one(n_frames, 4.0, 100.0, p) for p in phases) if r is not None]
        if not results:
            print(f"| {n_frames} | 4 | 100 | every fit failed |")
            continue
        c = results[0][2]
        noisy = [one(n_frames, 4.0, 100.0, rng.uniform(), noise=rng) for _ in range(n_noisy)]
        noisy = [r for r in noisy if r is not None]
        fired = ", ".join(n for n, k in c.items() if k.failed) or "none"
        f0_diff = worst([r[2]["f0_vs_f_q"].details["f0"] - r[2]["f0_vs_f_q"].details["f0_expected"] for r in results])
        if len(noisy) > 1:
            pulls = np.array([(r[3].tau_ns - 100.0) / r[3].tau_error_ns for r in noisy if r[3].tau_error_ns > 0])
            f0_pulls = np.array([r[2]["f0_vs_f_q"].value for r in noisy])
            noise = (f"{pulls.std(ddof=1):.2f} | {pulls.mean():+.2f} | {np.sqrt(np.mean(f0_pulls ** 2)):.2f} (rms), "
                     f"max {f0_pulls.max():.1f} | {np.median([r[3].tau_error_ns for r in noisy]):.1f} ns "
                     f"({len(noisy)} fits)")
        else:
            noise = f"- | - | - | {len(noisy)} fits"
        print(f"| {n_frames} | 4 | 100 | {int(c['kept_frames'].value)} | {c['energy_step'].value:.2f} | "
              f"{c['energy_step'].details['step_per_resolution']:.3f} | "
              f"{c['window'].value:.1f} | {100 * worst([r[0] for r in results]):+.2f} % | "
              f"{worst([r[1] for r in results]):+.4f} | {f0_diff:+.4f} | {fired} | {noise} |")


F0_CASES = (
    ("sound", dict(n_frames=1024, v_max=10.0, tau=100.0)),
    ("sound, tau 30 ns", dict(n_frames=512, v_max=10.0, tau=30.0)),
    ("sound, tau 300 ns", dict(n_frames=4092, v_max=10.0, tau=300.0)),
    ("+-4 mm/s", dict(n_frames=512, v_max=4.0, tau=100.0)),
    ("+-2 mm/s (the demo's window)", dict(n_frames=128, v_max=2.0, tau=100.0)),
    ("+-2 mm/s, 1024 frames", dict(n_frames=1024, v_max=2.0, tau=100.0)),
    ("128 frames over +-10 mm/s", dict(n_frames=128, v_max=10.0, tau=100.0)),
    ("relax_bg_coeff 1.02", dict(n_frames=1024, v_max=10.0, tau=100.0, relax_bg_coeff=1.02)),
    ("flat background 10 %", dict(n_frames=1024, v_max=10.0, tau=100.0, flat_background=0.1)),
    ("KWW beta 0.6 fitted as exp", dict(n_frames=1024, v_max=10.0, tau=100.0, beta=0.6)),
)


def f0_table(n_noisy):
    print(f"\n## F(0) against f_q: pull |F(0) - r f_q| / sigma over {n_noisy} Poisson realisations "
          "(2e4 counts per frame and q bin); r = share of the line areas the window keeps")
    print("| case | noise-free F(0) - f_q | noise-free F(0) - r f_q | noise-free tau bias | noise-free f_q bias | "
          "pull: median | pull: 99th percentile | pull > 4 | checks fired (noise-free) |")
    print("|---|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(11)
    for label, case in F0_CASES:
        case = dict(case)
        n_frames, v_max, tau = case.pop("n_frames"), case.pop("v_max"), case.pop("tau")
        clean = one(n_frames, v_max, tau, 0.37, **case)
        noisy = [one(n_frames, v_max, tau, rng.uniform(), noise=rng, **case) for _ in range(n_noisy)]
        pulls = np.array([r[2]["f0_vs_f_q"].value for r in noisy if r is not None])
        fired = ", ".join(n for n, c in clean[2].items() if c.failed) or "none"
        d = clean[2]["f0_vs_f_q"].details
        print(f"| {label} | {d['f0'] - d['f_q']:+.4f} | {d['f0'] - d['f0_expected']:+.4f} | {100 * clean[0]:+.2f} % | "
              f"{clean[1]:+.4f} | {np.median(pulls):.2f} | {np.percentile(pulls, 99):.2f} | {np.mean(pulls > 4):.1%} | "
              f"{fired} |")


def full_sample(directory, preset="full"):
    """Cook the default full-size sample (built first when missing; ``preset`` of
    make_full_tree.py) and print the checks that fired."""
    from eqegs_repo import Repository
    from eqegs_repo.simulate import demo, synthetic
    here = os.path.dirname(os.path.abspath(__file__))
    if not os.path.isdir(os.path.join(directory, "truth")):
        subprocess.run([sys.executable, os.path.join(here, "make_full_tree.py"), directory, "--preset", preset],
                       check=True)
    truth = synthetic.load_truth(directory, "u0000000", "2025A1234", "S001")
    repo = Repository(os.path.join(directory, "UserData", "u0000000", "EQEGS"), spice_url="memory://",
                      cache_url=os.path.join(directory, "cache-checks"))
    demo.seed_spice(repo["2025A1234"], truth.params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PhysicsWarning)
        ds = repo["2025A1234"]["S001"].cooked
    fired = [c for c in ds.attrs["physics_checks"] if c["failed"]]
    print(f"\n## the default {preset}-size sample (S001 of make_full_tree.py --preset {preset})")
    for c in ds.attrs["physics_checks"]:
        print(f"  {c['name']:<12s} value {c['value']!s:<22.8} threshold {c['bound']} {c['threshold']:g}")
    print(f"  tau = {float(ds.tau):.1f} +- {float(ds.tau_error):.1f} ns, f_q = {float(ds.f_q):.4f} +- "
          f"{float(ds.f_q_error):.4f}")
    warned = [w for w in caught if issubclass(w.category, PhysicsWarning)]
    print("checks: " + (", ".join(c["name"] for c in fired) + " fired" if fired else "none fired")
          + f" ({len(warned)} physics warnings)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", type=int, default=6, help="drive phases per row")
    parser.add_argument("--noisy", type=int, default=100, help="noise realisations per row of the noisy tables")
    parser.add_argument("--only", nargs="*", default=["step", "window", "frames", "f0"])
    parser.add_argument("--full", default=None, help="folder of the full-size tree (built when missing)")
    parser.add_argument("--preset", default="full", help="with --full: the size preset of the tree (full)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)
    phases = (np.arange(args.phases) + np.random.default_rng(0).uniform(0, 1, args.phases)) / args.phases
    print(f"noise-free bias, q = {Q:g} nm^-1, f_q = {F_Q}, rounded triangle, default E-spectrum settings; "
          f"{args.phases} drive phases per row")
    if "step" in args.only:
        step_table(phases)
    if "window" in args.only:
        window_table(phases)
    if "frames" in args.only:
        frames_table(phases, args.noisy)
    if "f0" in args.only:
        f0_table(args.noisy)
    if args.full:
        full_sample(args.full, args.preset)


if __name__ == "__main__":
    main()
