"""Time `dir()` and `all()` on a cold repository of 20 proposals x 50 samples on local disk,
and count the array files opened (must be 0).

    python benchmarks/bench_listing.py [--proposals 20] [--samples 50]

Each repetition builds a fresh Repository (no listing cache); the medians are printed.
"""
import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from eqegs_repo import Repository


def build_tree(root, n_proposals, n_samples):
    small = io.BytesIO()
    np.save(small, np.zeros((4, 8, 2), np.uint16))
    for p in range(n_proposals):
        for s in range(n_samples):
            folder = Path(root, f"2025A{p:04d}", f"S{s:03d}")
            (folder / "train_integrated").mkdir(parents=True)
            (folder / "train_integrated.json").write_text(
                json.dumps({"n_frames": 4, "n_sensors": 3, "sensor_shape": [8, 2]}))
            for k in range(3):
                (folder / "train_integrated" / f"sensor_{k}.npy").write_bytes(small.getvalue())
        Path(root, f"2025A{p:04d}", "download").mkdir()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proposals", type=int, default=20)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    opened = []
    sys.addaudithook(lambda event, a: opened.append(str(a[0])) if event == "open" and a and str(a[0]).endswith(".npy") else None)
    with tempfile.TemporaryDirectory() as root:
        build_tree(root, args.proposals, args.samples)
        opened.clear()
        t_dir, t_all = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            repo = Repository(root + "/{proposal}/{sample}")
            names = dir(repo)
            t1 = time.perf_counter()
            n = sum(len(dir(repo[key])) for key in repo.all())
            t2 = time.perf_counter()
            t_dir.append(t1 - t0)
            t_all.append(t2 - t0)
        assert len([x for x in names if x.startswith("p2025")]) == args.proposals, names
        print(f"tree: {args.proposals} proposals x {args.samples} samples (local disk), {args.repeat} cold repetitions")
        print(f"dir(repo), cold:                      median {statistics.median(t_dir) * 1e3:8.1f} ms (target < 500 ms)")
        print(f"dir(repo) + dir() of every proposal:  median {statistics.median(t_all) * 1e3:8.1f} ms ({n} names)")
        print(f".npy files opened: {len(opened)} (must be 0)")


if __name__ == "__main__":
    main()
