"""The demo's settings judged: noise-free bias and the pulls of noisy trees over many seeds.

Writes the demo tree (``eqegs_repo.simulate.demo.write_tree``, preset --preset) for --seeds
seeds and its noise-free copy (``demo.noise_free_copy``: the same samples, expected counts
instead of Poisson draws), cooks every sample with the e_spectrum settings given (default: the
demo's, the project's defaults) and prints, per sample, the noise-free bias of tau (per cent and
in units of the noisy error) and of f_q, then the mean and spread of the noisy pulls
(fit - truth) / error over all samples and seeds. Unbiased settings with honest errors give
noise-free biases far below 1 sigma, mean pulls near 0 and spreads near 1.

Run:  python benchmarks/bench_demo_settings.py [--preset demo] [--seeds 8] [--threshold 0.05]
      [--bg-n-points N] [--n-mc 500]
"""
from __future__ import annotations

import argparse
import tempfile
import warnings

import numpy as np
import pandas as pd

from eqegs_repo.cooking import progress
from eqegs_repo.repository import Repository
from eqegs_repo.simulate import demo, synthetic


def cooked(base: str, **e_spectrum) -> pd.DataFrame:
    """recovered_vs_truth of the demo tree at ``base``, seeded with ``e_spectrum``."""
    repo = Repository(str(synthetic.eqegs_root(base)), spice_url="memory://", cache_url=False)
    demo.seed_tree(repo, base, **e_spectrum)
    return demo.recovered_vs_truth(repo, base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=demo.PRESET)
    parser.add_argument("--seeds", type=int, default=8, help="noisy trees (seeds 1, 2, ...)")
    parser.add_argument("--threshold", type=float, default=demo.E_SPECTRUM["isf_error_threshold"])
    parser.add_argument("--bg-n-points", type=int, default=None, help="wing points (default: the project's rule)")
    parser.add_argument("--n-mc", type=int, default=demo.E_SPECTRUM["n_mc"])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    settings = {"isf_error_threshold": args.threshold, "n_mc": args.n_mc}
    if args.bg_n_points is not None:
        settings["bg_n_points"] = args.bg_n_points
    rows = []
    with tempfile.TemporaryDirectory() as folder, progress.quiet():
        for seed in range(1, args.seeds + 1):
            base = f"{folder}/seed{seed}"
            demo.write_tree(base, preset=args.preset, seed=seed)
            rows.append(cooked(base, **settings).assign(seed=seed))
        demo.noise_free_copy(f"{folder}/seed1", **settings)
        free = cooked(f"{folder}/seed1/{demo.NOISE_FREE_DIR}", **settings)
    noisy = pd.concat(rows, ignore_index=True)
    judged = demo.with_noise_free(rows[0], free)
    print(f"preset {args.preset}, e_spectrum {settings}")
    print("noise-free copy of seed 1 (bias in units of the noisy error of seed 1):")
    print(judged[["proposal", "sample", "tau_true", "tau_noise_free", "tau_bias_pct", "tau_bias_sigma", "f_q_true",
                  "f_q_noise_free", "f_q_bias", "f_q_bias_sigma"]].round(4).to_string(index=False))
    for name in ("tau", "f_q"):
        pulls = noisy[f"{name}_dev_sigma"].to_numpy()
        inside = np.mean(np.abs(pulls) <= 2)
        print(f"{name}: {len(pulls)} noisy fits over {args.seeds} seeds: mean pull {pulls.mean():+.2f} "
              f"(± {pulls.std(ddof=1) / np.sqrt(len(pulls)):.2f}), spread {pulls.std(ddof=1):.2f}, "
              f"within 2 sigma {100 * inside:.0f} %")


if __name__ == "__main__":
    main()
