"""Samples per minute and bytes read of `reanalyze` with 1 and 2 local worker processes.

    python benchmarks/bench_reanalysis.py [--presets small medium] [--samples 4] [--dir DIR]
    python benchmarks/make_full_tree.py /tmp/eqegs-full3 --samples 3      # 4 x 4.6 GB, once
    python benchmarks/bench_reanalysis.py --tree /tmp/eqegs-full3 --preset full [--repeat 3]

For each preset a synthetic proposal (a background run and N samples) is written once into DIR
(default: a temporary folder), or an existing tree is used (``--tree``, written by
make_full_tree.py), spice matching the simulation is seeded, and the whole chain is cooked for
the N samples with a cold result cache, first with 1 then with 2 worker processes. The figures
include starting and stopping the local cluster. ``read`` is the sum of ``rchar`` (bytes read
through read(2)-like calls, /proc/<pid>/io) of the worker processes during the reanalysis,
printed beside the floor (N + 1) x one sample's size: each sample and the background read once.
"""
import argparse
import os
import statistics
import tempfile
import time

from eqegs_repo import Repository, batch
from eqegs_repo.simulate import synthetic

PROPOSAL = "2025A1234"


def seed(prop, params, background_id):
    for name, values in synthetic.spice_mappings(params).items():
        prop.spice.seed(name, replace=True, **{k: v for k, v in values.items() if k != "schema_version"})
    prop.spice.seed("q_integration", replace=True, bg_sample_id=background_id,
                    **synthetic.suggested_boxes(params))
    prop.spice.seed("velocity_calibration", replace=True, kind="poly", poly_coeffs=[0.0, 1.0])
    prop.spice.seed("angle_calibration", replace=True, kind="cos2theta")
    prop.spice.seed("q_range", replace=True, q_min=11.0, q_max=13.0)


def rchar():
    """Bytes this process has read so far (``rchar`` of /proc/self/io)."""
    with open("/proc/self/io") as handle:
        return int(next(line for line in handle if line.startswith("rchar")).split()[1])


def reanalyze(folder, params, workers):
    """``(wall s, table, bytes read by the workers)`` of one reanalysis with a cold result cache."""
    from distributed import Client, LocalCluster

    root = synthetic.eqegs_root(folder)
    repo = Repository(f"{root}/{{proposal}}/{{sample}}", spice_url=f"{folder}/spice",
                      cache_url=tempfile.mkdtemp(prefix="cache-", dir=folder))
    seed(repo[PROPOSAL], params, synthetic.BACKGROUND_SAMPLE_ID)
    start = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        before = client.run(rchar)
        table = batch.reanalyze(repo, samples="S0[0-9][1-9]", client=client, progress=False)
        after = client.run(rchar)
    wall = time.perf_counter() - start
    return wall, table, sum(after[w] - before[w] for w in after)


def sample_bytes(folder, key):
    path = os.path.join(synthetic.eqegs_root(folder), PROPOSAL, key, "train_integrated")
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path) if f.startswith("sensor_"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "medium"])
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--dir", default=None, help="where to write the trees (kept)")
    parser.add_argument("--tree", default=None, help="use this tree (make_full_tree.py) instead of writing one")
    parser.add_argument("--preset", default="full", help="the preset --tree was written with")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; medians are printed")
    args = parser.parse_args()
    if args.tree:
        cases = [(args.preset, args.tree)]
    else:
        base = args.dir or tempfile.mkdtemp(prefix="eqegs-bench-")
        cases = [(preset, os.path.join(base, preset)) for preset in args.presets]
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; medians of {args.repeat}")
    print(f"{'preset':8} {'frames':>6} {'canvas':>9} {'samples':>7} {'GB/sample':>9} {'workers':>7} {'wall s':>7} "
          f"{'samples/min':>11} {'read GB':>8} {'(N+1) x size':>12} {'status':>12}")
    for preset, folder in cases:
        if not os.path.exists(folder):
            synthetic.write_tree(folder, proposals=(PROPOSAL,), preset=preset, seed=5,
                                 samples_per_proposal=args.samples)
        params = synthetic.preset_params(preset)
        keys = sorted(k for k in os.listdir(os.path.join(synthetic.eqegs_root(folder), PROPOSAL))
                      if k.startswith("S0") and k != synthetic.BACKGROUND_SAMPLE_ID)
        size = sample_bytes(folder, keys[0])
        for workers in (1, 2):
            runs = [reanalyze(folder, params, workers) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            read = statistics.median(r[2] for r in runs)
            table = runs[-1][1]
            status = ",".join(f"{n} {s}" for s, n in table.status.value_counts().items())
            print(f"{preset:8} {params.n_frames:6d} {'x'.join(map(str, params.sensor_layout.canvas_shape)):>9} "
                  f"{len(table):7d} {size / 1e9:9.3f} {workers:7d} {wall:7.1f} {60 * len(table) / wall:11.1f} "
                  f"{read / 1e9:8.2f} {(len(table) + 1) * size / 1e9:12.2f} {status:>12}", flush=True)


if __name__ == "__main__":
    main()
