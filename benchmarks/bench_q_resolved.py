"""Q-resolved dynamics: one ``sample.q_resolved(ranges)`` call against one cook per range, and the
recovery of an injected tau ∝ q^-n.

A synthetic sample of the --preset (default small: 1024 frames, 182 x 96 px) with
tau = 100 ns (q/12 nm^-1)^-n (--exponent, default 2.9) is integrated once (cached); then the
--ranges ranges of 2 nm^-1 from 8 nm^-1 on are cooked (a) in one q_resolved call and (b) one
sample.cook(q_min=..., q_max=...) per range, each from the cached q integration, with n_mc 500
(the default). Prints the wall times (median of --repeat runs), that both give the same tau, and
the fitted law against the injected one. Each repeat sets a new e_spectrum.seed, so the E spectra
are computed, not read from the cache.

Run:  python benchmarks/bench_q_resolved.py [--preset small] [--ranges 5] [--repeat 3]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from eqegs_repo import Repository
from eqegs_repo.cooking.q_resolved import tau_q_law
from eqegs_repo.cooking.progress import quiet
from eqegs_repo.measured import with_error
from eqegs_repo.simulate import demo, synthetic


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--ranges", type=int, default=5)
    parser.add_argument("--exponent", type=float, default=2.9)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base = tempfile.mkdtemp()
    tree = synthetic.write_tree(base, proposals=("2025A1234",), preset=args.preset, seed=1, samples_per_proposal=1,
                                tau_exponent=args.exponent)
    truth = synthetic.load_truth(base, tree.account, "2025A1234", "S001")
    repo = Repository(tree.url(), spice_url="memory://", cache_url=base + "/cache")
    demo.seed_spice(repo["2025A1234"], truth.params, isf_error_threshold=0.1)
    sample = repo["2025A1234"]["S001"]
    ranges = [(8.0 + 2 * i, 10.0 + 2 * i) for i in range(args.ranges)]
    with quiet():
        sample.cook("q_integration")  # integrated once, cached: both ways start from it
        together, apart = [], []
        for repeat in range(args.repeat):  # a new seed each time: no E-spectrum result comes from the cache
            started = time.perf_counter()
            ds = sample.q_resolved(ranges, seed=repeat + 1)
            together.append(time.perf_counter() - started)
            started = time.perf_counter()
            singles = [sample.cook(q_min=a, q_max=b, seed=repeat + 1) for a, b in ranges]
            apart.append(time.perf_counter() - started)
    same = all(ds.tau[i].item() == s.tau.item() for i, s in enumerate(singles))
    t1, t2 = statistics.median(together), statistics.median(apart)
    print(f"{args.preset}, {truth.params.n_frames} frames, {len(ranges)} ranges, median of {args.repeat}:")
    print(f"  q_resolved (one call):          {t1:.2f} s")
    print(f"  one cook per range:             {t2:.2f} s   ratio {t2 / t1:.2f}; same tau in every range: {same}")
    law = tau_q_law(ds)
    print(f"  law: n = {with_error(law.n, law.n_error)} (injected {args.exponent}), "
          f"pull {(law.n - args.exponent) / law.n_error:+.2f}; "
          f"tau0 = {with_error(law.tau0_ns, law.tau0_error_ns, 'ns')} at q0 = {law.q0_nm:.3f} nm^-1 "
          f"(injected {100.0 * (law.q0_nm / 12.0) ** -args.exponent:.2f}); chi2_red {law.chi2_red:.2f}")


if __name__ == "__main__":
    main()
