"""Listing speed: cold `dir()` on a repository of 20 proposals x 50 samples (and the array files
opened: must be 0), and `eqegs ls`, `prop.table()` and its HTML on one proposal of many samples.

    python benchmarks/bench_listing.py [--proposals 20] [--samples 50] [--one-proposal 5000] [--tree DIR]

The first part repeats in this process, each time with a fresh Repository (no listing cache).
The second writes one proposal of ``--one-proposal`` samples (a tiny synthetic run hard-linked
into every sample folder, the demo's spice records, a stale cache entry for every step of every
other sample, so that their fingerprints are computed; ``--tree DIR``: written into DIR once and
reused) and runs each listing in a new process: once with no kept rows (a user cache folder of
its own, emptied: every row computed, then kept, eqegs_repo/listing_cache.py), then ``--runs``
times with the rows kept. It prints the wall and CPU time of the whole process (Python's start
and the imports included; medians for the kept rows) and of the listing call alone.
"""
import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
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


def build_proposal(base, n_samples):
    """One proposal of ``n_samples`` samples (plus the background run) under ``base``; returns
    ``(EQEGS folder, proposal key, cache folder)``."""
    from eqegs_repo.simulate import demo, synthetic
    from eqegs_repo.step_table import names

    tree = synthetic.write_tree(base, proposals=("2025A1234",), preset="tiny", seed=1, samples_per_proposal=1)
    truth = synthetic.load_truth(base, tree.account, "2025A1234", "S001")
    cache = os.path.join(base, "cache")
    prop = Repository(tree.url(), cache_url=cache)["2025A1234"]
    demo.seed_spice(prop, truth.params, bg_n_points=8, isf_error_threshold=0.1, n_mc=100)
    for i in range(2, n_samples + 1):
        shutil.copytree(prop["S001"].path, os.path.join(prop.path, f"S{i:04d}"), copy_function=os.link)
    prop = Repository(tree.url(), cache_url=cache)["2025A1234"]
    for key in prop.keys()[::2]:
        for step in names():
            folder = prop.repository.cache.folder(prop[key].path, prop.key, key, step)
            os.makedirs(folder)
            Path(folder, "0" * 64 + ".npz").touch()  # an entry of other inputs: "stale"
    return os.path.dirname(prop.path), prop.key, cache


_CALL = """
import sys, time
t0 = time.perf_counter(); c0 = time.process_time()
from eqegs_repo import Repository
prop = Repository(sys.argv[1] + "/{proposal}/{sample}", cache_url=sys.argv[3])[sys.argv[2]]
t1 = time.perf_counter(); c1 = time.process_time()
out = prop.table() if sys.argv[4] == "table" else prop._repr_html_()
print(time.perf_counter() - t1, time.process_time() - c1, len(out))
"""


def timed(command, env):
    """``(wall s, CPU s, stdout)`` of a new process running ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def _call_times(found):
    """``"wall CPU"`` medians of the listing call alone (printed by ``_CALL``), or blanks."""
    calls = [f[2].split() for f in found if len(f[2].split()) == 3]
    if not calls:
        return f"{'':6s} {'':6s}"
    return f"{statistics.median(float(c[0]) for c in calls):6.2f} {statistics.median(float(c[1]) for c in calls):6.2f}"


def bench_one_proposal(n_samples, runs, tree=None):
    with tempfile.TemporaryDirectory() as scratch:
        base = tree or os.path.join(scratch, "tree")
        t0 = time.perf_counter()
        if tree and os.path.isdir(os.path.join(tree, "UserData")):
            root = os.path.join(tree, "UserData", "u0000000", "EQEGS")
            proposal, cache = "2025A1234", os.path.join(tree, "cache")
            n_samples = len([n for n in os.listdir(os.path.join(root, proposal)) if n.startswith("S")]) - 1
            made = f"reused from {tree}"
        else:
            root, proposal, cache = build_proposal(base, n_samples)
            made = f"written in {time.perf_counter() - t0:.1f} s"
        print(f"one proposal of {n_samples + 1} samples (tiny runs hard-linked, half with stale cache "
              f"entries) {made}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
              f"kept rows: medians of {runs} runs, new process each")
        user_cache = os.path.join(scratch, "user-cache")
        env = {**os.environ, "XDG_CACHE_HOME": user_cache}
        rows = {"eqegs ls <proposal>": [sys.executable, "-m", "eqegs_repo", "ls", root, proposal, "--cache-url", cache],
                "prop.table()": [sys.executable, "-c", _CALL, root, proposal, cache, "table"],
                "prop._repr_html_()": [sys.executable, "-c", _CALL, root, proposal, cache, "html"]}
        print(f"{'':22s} no kept rows: process wall s  CPU s | kept rows: process wall s  CPU s | "
              "the call: wall s  CPU s   (target: < 2 s)")
        for name, command in rows.items():
            shutil.rmtree(user_cache, ignore_errors=True)
            cold = timed(command, env)
            found = [timed(command, env) for _ in range(runs)]
            wall = statistics.median(f[0] for f in found)
            cpu = statistics.median(f[1] for f in found)
            print(f"{name:22s} {cold[0]:28.2f} {cold[1]:6.2f} | {wall:25.2f} {cpu:6.2f} | {'':9s}{_call_times(found)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proposals", type=int, default=20)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--one-proposal", type=int, default=5000, metavar="N",
                        help="samples of the one-proposal listing (0: skip it)")
    parser.add_argument("--runs", type=int, default=5, help="new processes per one-proposal listing")
    parser.add_argument("--tree", metavar="DIR", help="write the one-proposal tree into DIR once and reuse it")
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
    if args.one_proposal:
        bench_one_proposal(args.one_proposal, args.runs, args.tree)


if __name__ == "__main__":
    main()
