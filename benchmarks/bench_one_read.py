"""One read on every detector: bytes read and time of the one-read path on trees with hot pixels
from 3 x to 1000 x the median rate, flickering, late and dead ones, fused against separate.

    python benchmarks/bench_one_read.py DIR [--preset medium] [--repeat 3] [--detectors clean ordinary ...]
    python benchmarks/bench_one_read.py DIR --full FULL [--repeat 3]   # FULL from make_full_tree.py

Part 1 (``DIR``, written once): a background and three samples of ``--preset`` (medium: 2048
frames x 3 sensors of 364 x 64, 573 MB a run), copied once per detector, each copy with the same
pixel defects in every run (:func:`eqegs_repo.simulate.defects.add_pixel_defects`, one seed: the
same detector), placed outside the ROI around the beam (a bright pixel inside it pulls the
centroid; both paths then find the same moved centre, but the probe's is another). The blocks and
the probe are scaled so that a run has as many blocks as a full-size one (16 MiB of 4.6 GB) and
the probe the same share. For each detector, in this process (warmed by a first cook) with an
empty result cache:

* ``fused``: ``cook("q_integration")`` of the three samples (the background shared);
* ``steps``: ``cook("reconstruction")`` then ``cook("q_integration")`` of each sample;
* ``separate``: ``cook.FUSE = False`` (the reconstruction reads the sample, the integration again).

``read`` is the raw bytes the passes read (every block counted where it is read), in sample
sizes, for the three samples and their background (floor 4); ``CPU`` the CPU seconds of all
threads (less noisy than the time on a shared machine); ``x floor`` the time against
``cat`` of the four runs' files (the page cache warm), medians of ``--repeat`` runs alternating
with the floors. ``same`` checks the fused and step-by-step intensities against the separate
ones bit for bit.

Part 2 (``--full FULL``): the full-size sample and background of ``make_full_tree.py`` get the
ordinary defects (once, recorded in ``FULL/defects.json``), and the whole chain (reconstruction
+ q integration with background + E spectrum and ISF) runs in a fresh process per run: fused,
step by step, separate, each against ``cat`` of both files, medians of ``--repeat``.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

PROPOSAL = "2025A1234"
DETECTORS = {
    "clean": [],
    "ordinary": [("hot", 3, 4), ("hot", 10, 4), ("hot", 20, 4), ("hot", 100, 4), ("hot", 1000, 4), ("dead", 0, 4)],
    "flickering": [("hot", 3, 4), ("hot", 20, 4), ("flicker", 20, 4), ("flicker", 1000, 4), ("dead", 0, 4)],
    "late": [("hot", 3, 4), ("hot", 20, 4), ("late", 20, 2), ("late", 1000, 2), ("dead", 0, 4)],
}
FULL_BLOCKS = 4.576e9 / (16 << 20)  # blocks of a full-size run


def write_clean(base, preset):
    """Background and three samples of ``preset`` under ``base/clean`` (once)."""
    from eqegs_repo.simulate import synthetic

    root = f"{base}/clean"
    if not os.path.exists(f"{root}/done"):
        shutil.rmtree(root, ignore_errors=True)
        params = synthetic.preset_params(preset)
        synthetic.write_sample(f"{root}/{PROPOSAL}/{synthetic.BACKGROUND_SAMPLE_ID}", params, seed=10_000, background=True)
        for index in range(3):
            synthetic.write_sample(f"{root}/{PROPOSAL}/S00{index + 1}", params, seed=index + 1)
        open(f"{root}/done", "w").close()
    return root


def beam_region(params, half=40):
    """(n_sensors, rows, cols) bool: sensor pixels in a box of half-width ``half`` px around the beam."""
    from eqegs_repo.kernels.sensors import sensor_pixels

    layout = params.sensor_layout
    pixels = np.stack([sensor_pixels(layout, k) for k in range(layout.n_sensors)])
    y, x = np.divmod(pixels, layout.canvas_shape[1])
    return (np.abs(x - params.centre_xy[0]) <= half) & (np.abs(y - params.centre_xy[1]) <= half)


def with_defects(base, clean, name, defects, params):
    """A copy of the clean tree with ``defects`` in every run (once)."""
    from eqegs_repo.simulate.defects import add_pixel_defects

    root = f"{base}/{name}"
    if not os.path.exists(f"{root}/done"):
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(clean, root, ignore=shutil.ignore_patterns("done"))
        for key in sorted(os.listdir(f"{root}/{PROPOSAL}")):
            add_pixel_defects(f"{root}/{PROPOSAL}/{key}", defects, seed=7, avoid=beam_region(params))
        open(f"{root}/done", "w").close()
    return root


def seed(prop, params):
    from eqegs_repo.simulate import synthetic

    for name, values in synthetic.spice_mappings(params).items():
        prop.spice.seed(name, **{k: v for k, v in values.items() if k != "schema_version"})
    prop.spice.seed("q_integration", bg_sample_id=synthetic.BACKGROUND_SAMPLE_ID, **synthetic.suggested_boxes(params))


def files_of(root):
    return sorted(os.path.join(d, f) for d, _, names in os.walk(f"{root}/{PROPOSAL}") for f in names
                  if f.startswith("sensor_"))


def cat(files):
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run(["cat", *files], stdout=null, check=True)
    return time.perf_counter() - start


def run_mode(root, params, mode, counter):
    """Cook the three samples in ``mode``; returns (seconds, CPU seconds of all threads, bytes read,
    {sample: q-integration dataset})."""
    import tempfile

    from eqegs_repo import Repository
    from eqegs_repo.cooking import cook

    cache = tempfile.mkdtemp(prefix="bench-one-read-")
    try:
        repo = Repository(f"{root}/{{proposal}}/{{sample}}", spice_url=f"memory://one-read-{os.path.basename(root)}",
                          cache_url=cache)
        prop = repo[PROPOSAL]
        if not len(prop.spice.records()):
            seed(prop, params)
        cook.FUSE = mode != "separate"
        counter[0] = 0
        start, cpu = time.perf_counter(), time.process_time()
        out = {}
        for key in ("S001", "S002", "S003"):
            if mode == "steps":
                prop[key].cook("reconstruction")
            out[key] = prop[key].cook("q_integration")
        return time.perf_counter() - start, time.process_time() - cpu, counter[0], out
    finally:
        cook.FUSE = True
        shutil.rmtree(cache, ignore_errors=True)


def part_one(args):
    from eqegs_repo.cooking import passes
    from eqegs_repo.simulate import synthetic

    params = synthetic.preset_params(args.preset)
    run_bytes = params.n_frames * 3 * np.prod(params.sensor_layout.sensor_shape) * np.dtype(params.dtype).itemsize
    passes.BLOCK_BYTES = int(run_bytes / FULL_BLOCKS)
    passes.PROBE_BYTES = 4 * passes.BLOCK_BYTES
    counter = [0]
    original = passes._read_block
    lock = threading.Lock()

    def counting(stack, start, stop, buffers):
        blocks = original(stack, start, stop, buffers)
        with lock:  # the lanes read in parallel
            counter[0] += sum(b.nbytes for b in blocks)
        return blocks

    passes._read_block = counting
    clean = write_clean(args.directory, args.preset)
    print(f"preset {args.preset}: {run_bytes / 1e6:.0f} MB a run, blocks of {passes.BLOCK_BYTES / 1e3:.0f} kB, "
          f"probe {passes.PROBE_BYTES / 1e6:.1f} MB; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    run_mode(clean, params, "fused", counter)  # first-use costs (numba, dask.array) out of the figures
    print(f"{'detector':<11} {'mode':<9} {'read (samples)':>15} {'per sample':>11} {'time':>7} {'x floor':>8} {'CPU':>7} "
          f"{'same':>5}  passes of S001..S003 (sample_reads, reread frames)")
    for name in args.detectors:
        defects = DETECTORS[name]
        root = with_defects(args.directory, clean, name, defects, params)
        files = files_of(root)
        cat(files)  # warm
        rows = {mode: [] for mode in ("fused", "steps", "separate")}
        floors = []
        results = {}
        for _ in range(args.repeat):
            for mode in rows:
                floors.append(cat(files))
                seconds, cpu, read, out = run_mode(root, params, mode, counter)
                rows[mode].append((seconds, read, cpu))
                results[mode] = out
        floor = statistics.median(floors)
        for mode, runs in rows.items():
            seconds = statistics.median(s for s, _, _ in runs)
            cpu = statistics.median(c for _, _, c in runs)
            read = statistics.median(r for _, r, _ in runs) / run_bytes
            same = all(np.array_equal(results[mode][k].intensity.values, results["separate"][k].intensity.values)
                       for k in results[mode])
            infos = [results[mode][k].attrs["passes"] for k in sorted(results[mode])]
            described = ", ".join(f"{i['sample_reads']}" + (f" ({i['reread_frames']})" if i.get("reread_frames") else "")
                                  for i in infos)
            print(f"{name:<11} {mode:<9} {read:>15.2f} {(read - 1) / 3:>11.2f} {seconds:>6.2f}s {seconds / floor:>7.2f}x "
                  f"{cpu:>6.2f}s "
                  f"{'yes' if same else 'NO':>5}  {described}", flush=True)
        print(f"{'':<11} floor: cat of {len(files)} files {floor:.2f} s (median of {len(floors)})")


FULL_CHILD = r"""
import json, sys, tempfile, shutil, time
from eqegs_repo import Repository
from eqegs_repo.cooking import cook
from eqegs_repo.simulate import synthetic
base, mode = sys.argv[1], sys.argv[2]
cook.FUSE = mode != "separate"
root = synthetic.eqegs_root(base)
cache = tempfile.mkdtemp(prefix="bench-one-read-")
repo = Repository(f"{root}/{{proposal}}/{{sample}}", spice_url=f"{base}/bench-spice", cache_url=cache)
sample = repo["2025A1234"]["S001"]

def rchar():
    with open("/proc/self/io") as handle:
        return int(next(line for line in handle if line.startswith("rchar")).split()[1])

read0, start = rchar(), time.perf_counter()
if mode == "steps":
    sample.cook("reconstruction")
    sample.cook("q_integration")
ds = sample.cook("e_spectrum_and_isf")
chain, read = time.perf_counter() - start, rchar() - read0
passes = sample.cook("q_integration").attrs["passes"]
shutil.rmtree(cache, ignore_errors=True)
print(json.dumps({"chain": chain, "read": read, "passes": passes, "tau": float(ds.tau)}))
"""


def part_two(args):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_full_chain

    from eqegs_repo.simulate import synthetic
    from eqegs_repo.simulate.defects import add_pixel_defects

    base = args.full
    params = synthetic.preset_params("full")
    record = os.path.join(base, "defects.json")
    if not os.path.exists(record):
        root = synthetic.eqegs_root(base)
        placed = {key: add_pixel_defects(f"{root}/{PROPOSAL}/{key}", DETECTORS["ordinary"], seed=7,
                                         avoid=beam_region(params))
                  for key in ("S000_noise", "S001")}
        with open(record, "w") as handle:
            json.dump(placed, handle)
    bench_full_chain.seed_spice(base, "full")
    files = bench_full_chain.sensor_files(base)
    size = sum(os.path.getsize(f) for f in files)
    cat(files)
    print(f"full size, ordinary hot and dead pixels: {len(files)} files, {size / 1e9:.2f} GB (sample + background), "
          f"page cache warm; load average {os.getloadavg()[0]:.1f}")
    floors, runs = [], {mode: [] for mode in ("fused", "steps", "separate")}
    for _ in range(args.repeat):
        for mode in runs:
            floors.append(cat(files))
            out = subprocess.run([sys.executable, "-c", FULL_CHILD, base, mode], check=True, text=True,
                                 stdout=subprocess.PIPE)
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    floor = statistics.median(floors)
    print(f"read floor (cat of both): median {floor:.2f} s, range {min(floors):.2f}-{max(floors):.2f}")
    for mode, results in runs.items():
        chain = statistics.median(r["chain"] for r in results)
        read = statistics.median(r["read"] for r in results)
        info = results[-1]["passes"]
        print(f"{mode:<9} chain median {chain:.2f} s = {chain / floor:.2f} x floor (runs "
              f"{', '.join(format(r['chain'], '.2f') for r in results)}); read {read / size * 2:.2f} run sizes; "
              f"sample_reads {info['sample_reads']}, tracked {info.get('tracked_pixels')}, "
              f"watched {info.get('watched_pixels')}, removed {info.get('removed_pixels')}; tau {results[-1]['tau']:.2f} ns")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", help="folder of the benchmark's trees (written once)")
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full", help="a tree of make_full_tree.py: also the full-size chain")
    parser.add_argument("--skip-small", action="store_true", help="only the full-size part")
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=list(DETECTORS))
    args = parser.parse_args()
    if not args.skip_small:
        part_one(args)
    if args.full:
        part_two(args)


if __name__ == "__main__":
    main()
