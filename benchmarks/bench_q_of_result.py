"""The q a result belongs to: τ of noise-free q ranges against the injected τ(q) at the midpoint of
the requested range and at the result's intensity-weighted q (docs/e-spectrum-and-isf.md#the-q-of-a-result).

A noise-free synthetic sample of the --preset (default full: 4092 frames, 3 sensors of 728 x 128)
and its background run are written with the simulator's expected counts instead of Poisson draws
(float32 counts; 2 x 4.6 GB at full size, in --dir or a temporary folder, removed afterwards
unless --keep). The injected law is τ = 100 ns (q/12 nm⁻¹)^-n (--exponent, default 2: the
simulator's default). The ranges of --width nm⁻¹ from --first on are cooked in one
``sample.q_resolved`` call (n_mc 500, the default); per range the script prints the requested
range, its midpoint, the pixels used, the weighted q, the fitted τ and its error against the truth
at the midpoint and at the weighted q, then the exponent of the τ(q) law fitted at both.

Run:  python benchmarks/bench_q_of_result.py [--preset full] [--ranges 6] [--width 1] [--first 9.5]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import numpy as np

from eqegs_repo import Repository
from eqegs_repo.cooking.progress import quiet
from eqegs_repo.cooking.q_resolved import tau_q_law
from eqegs_repo.measured import with_error
from eqegs_repo.simulate import demo, synthetic


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full")
    parser.add_argument("--ranges", type=int, default=6)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--first", type=float, default=9.5)
    parser.add_argument("--exponent", type=float, default=2.0)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    base = tempfile.mkdtemp(dir=args.dir, prefix="q-of-result-")
    try:
        started = time.perf_counter()
        tree = synthetic.write_tree(base, proposals=("2025A1234",), preset=args.preset, seed=1, samples_per_proposal=1,
                                    dtype="float32", noise_free=True, tau_exponent=args.exponent)
        written = time.perf_counter() - started
        truth = synthetic.load_truth(base, tree.account, "2025A1234", "S001")
        dynamics = truth.params.dynamics()
        repo = Repository(tree.url(), spice_url="memory://", cache_url=base + "/cache")
        demo.seed_spice(repo["2025A1234"], truth.params, isf_error_threshold=0.1)
        sample = repo["2025A1234"]["S001"]
        ranges = [(args.first + args.width * i, args.first + args.width * (i + 1)) for i in range(args.ranges)]
        started = time.perf_counter()
        with quiet():
            ds = sample.q_resolved(ranges)
        cooked = time.perf_counter() - started
        print(f"{args.preset}, {truth.params.n_frames} frames, noise-free, tau = 100 ns (q/12)^-{args.exponent:g}; "
              f"written in {written:.0f} s, {len(ranges)} ranges cooked in {cooked:.1f} s (integration included)")
        print(f"{'requested':>13} {'midpoint':>8} {'pixels used':>15} {'q_weighted':>10} {'tau (ns)':>16}"
              f" {'vs truth at midpoint':>20} {'at q_weighted':>13}")
        midpoints = 0.5 * (ds.q_min.values + ds.q_max.values)
        for i, mid in enumerate(midpoints):
            row = ds.isel(q_range=i)
            tau, q_w = row.tau.item(), row.q_weighted.item()
            at_mid = 100 * (tau / float(dynamics.tau(np.array([mid]))[0]) - 1)
            at_w = 100 * (tau / float(dynamics.tau(np.array([q_w]))[0]) - 1)
            print(f"{row.q_min.item():6.2f}-{row.q_max.item():<6.2f} {mid:8.3f} "
                  f"{row.q_pixel_min.item():7.3f}-{row.q_pixel_max.item():<7.3f} {q_w:10.4f} "
                  f"{with_error(tau, row.tau_error.item()):>16} {at_mid:+19.2f}% {at_w:+12.2f}%")
        law, at_midpoints = tau_q_law(ds), tau_q_law((midpoints, ds.tau.values, ds.tau_error.values))
        print(f"tau(q) law n: at q_weighted {with_error(law.n, law.n_error)}, at the midpoints "
              f"{with_error(at_midpoints.n, at_midpoints.n_error)} (injected {args.exponent:g})")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
