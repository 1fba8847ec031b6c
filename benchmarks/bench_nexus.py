"""NeXus/HDF5 export: one sample's file from cooked results, and a reanalysis table's file.

    python benchmarks/bench_nexus.py [--preset small] [--runs 5] [--rows 1000]

Writes one synthetic sample of ``--preset`` (with its background run) into a temporary folder,
cooks it once (the time is printed: what an export adds is compared with it), then, ``--runs``
times: ``sample.export_nexus(path, overwrite=True)`` with the results taken from the cache
(building the tree, writing through a temporary file, the move), and ``read_nexus`` of that file.
Then a table of ``--rows`` rows with the reanalysis columns written by ``table_to_nexus``. Prints
medians (min, max) and the file sizes.
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import pandas as pd

from eqegs_repo import Repository
from eqegs_repo.batch import COLUMNS
from eqegs_repo.cooking.nexus_export import table_to_nexus
from eqegs_repo.io.nexus import read_nexus
from eqegs_repo.simulate import demo, synthetic

PROPOSAL = "2025A1234"


def timed(call, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def show(label, times):
    print(f"{label:44s} median {statistics.median(times) * 1e3:8.1f} ms  (min {min(times) * 1e3:.1f}, "
          f"max {max(times) * 1e3:.1f}; {len(times)} runs)")


def table_of(rows):
    rng = np.random.default_rng(1)
    data = {name: rng.random(rows) for name in COLUMNS}
    for name in ("proposal", "sample", "status", "error", "spice_fingerprint", "input"):
        data[name] = [f"{name}-{i}" for i in range(rows)]
    return pd.DataFrame(data, columns=list(COLUMNS))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=["tiny", "small", "medium", "full"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base:
        params = synthetic.preset_params(args.preset)
        synthetic.write_sample(f"{base}/{PROPOSAL}/{synthetic.BACKGROUND_SAMPLE_ID}", params, seed=10_000,
                               background=True)
        synthetic.write_sample(f"{base}/{PROPOSAL}/S001", params, seed=1)
        repo = Repository(f"{base}/{{proposal}}/{{sample}}", spice_url="memory://bench-nexus",
                          cache_url=f"{base}/cache")
        demo.seed_spice(repo[PROPOSAL], params, (11.0, 13.0), synthetic.BACKGROUND_SAMPLE_ID)
        sample = repo[PROPOSAL]["S001"]
        started = time.perf_counter()
        sample.cook()
        print(f"preset {args.preset}: cook (reconstruction, q integration, E spectrum and ISF) "
              f"{time.perf_counter() - started:.2f} s, once")
        path = f"{base}/S001.nxs"
        show("export_nexus from the cache", timed(lambda: sample.export_nexus(path, overwrite=True), args.runs))
        show("read_nexus of that file", timed(lambda: read_nexus(path), args.runs))
        print(f"{'sample file':44s} {os.path.getsize(path) / 1e3:8.1f} kB")
        table, table_path = table_of(args.rows), f"{base}/table.nxs"
        show(f"table_to_nexus, {args.rows} rows", timed(lambda: table_to_nexus(table, table_path, overwrite=True),
                                                        args.runs))
        print(f"{'table file':44s} {os.path.getsize(table_path) / 1e3:8.1f} kB")


if __name__ == "__main__":
    main()
