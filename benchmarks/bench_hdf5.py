"""The whole chain on full-size HDF5 runs against the time to only decompress the same files.

    python benchmarks/bench_hdf5.py --dir /scratch/eqegs-h5 [--repeat 3] [--codecs zstd bitshuffle]

The first run writes, once, one full-size tree per codec into ``--dir`` (``<dir>/<preset>-<codec>``: a
sample and its background run, 4092 frames x 3 sensors of 728 x 128, uint32, written by the
simulator with ``format="hdf5"``; several minutes each) and reuses them afterwards. Codecs:
``zstd`` (Zstandard) and ``bitshuffle`` (bitshuffle + LZ4), both through hdf5plugin.

For each codec and repetition, each in a fresh process with the page cache warm:

* ``decompress``: every frame of the sample and of its background read and decompressed through
  the library's reader (:class:`eqegs_repo.io.formats.hdf5.Hdf5Array`, chunk-aligned blocks of
  the passes, the same number of threads as the cooking's lanes, reused buffers), nothing computed;
* ``chain``: ``sample.cook("e_spectrum_and_isf")`` with an empty result cache (reconstruction and
  q integration in one read, the background integrated, E spectrum and ISF with 500 Monte-Carlo
  resamples), after a tiny synthetic sample was cooked in the same process (numba's loading
  left out), with the process's peak RSS.

Decompressions and chains alternate, so they see the same load (the machine may be shared);
medians of one run are printed, with the targets: chain <= 1.5 x decompress, peak RSS <= 1 GiB.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_full_chain import PROPOSAL, SAMPLE, seed_spice

BACKGROUND = "S000_noise"
H5 = "train_integrated.h5"

CHAIN = r"""
import atexit, json, resource, shutil, sys, tempfile, time, warnings
from eqegs_repo import Repository
from eqegs_repo.errors import PhysicsWarning
from eqegs_repo.simulate import demo, synthetic
base = sys.argv[1]
tiny = tempfile.mkdtemp(prefix="bench-warm-")
atexit.register(shutil.rmtree, tiny, True)
tree = synthetic.write_tree(tiny, proposals=("2025A1234",), preset="tiny", seed=1, samples_per_proposal=1,
                            format="hdf5")
truth = synthetic.load_truth(tiny, tree.account, "2025A1234", "S001")
prop = Repository(tree.url(), spice_url="memory://warm", cache_url=False)["2025A1234"]
demo.seed_spice(prop, truth.params, bg_n_points=8, isf_error_threshold=0.1, n_mc=20)
with warnings.catch_warnings():  # the warm-up's tiny run: its narrow window warns, as it should
    warnings.simplefilter("ignore", PhysicsWarning)
    prop["S001"].cooked
repo = Repository(f"{synthetic.eqegs_root(base)}/{{proposal}}/{{sample}}", spice_url=f"{base}/bench-spice",
                  cache_url=False)
sample = repo[%(proposal)r][%(sample)r]
cpu0, start = time.process_time(), time.perf_counter()
ds = sample.cook("e_spectrum_and_isf")
chain, cpu = time.perf_counter() - start, time.process_time() - cpu0
print(json.dumps({"seconds": chain, "cpu": cpu, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "tau": float(ds.tau), "tau_error": float(ds.tau_error), "f_q": float(ds.f_q),
                  "f_q_error": float(ds.f_q_error)}))
""" % {"proposal": PROPOSAL, "sample": SAMPLE}

DECOMPRESS = r"""
import json, resource, sys, time
from concurrent.futures import ThreadPoolExecutor
import numpy as np
from eqegs_repo import Repository
from eqegs_repo.cooking import cook, passes
from eqegs_repo.io.run import open_run
from eqegs_repo.simulate import synthetic
base, threads = sys.argv[1], int(sys.argv[2])
repo = Repository(f"{synthetic.eqegs_root(base)}/{{proposal}}/{{sample}}", spice_url="memory://none", cache_url=False)
stacks = [open_run(s.fs, s.path, s.marker, s.layout).stack
          for s in (repo[%(proposal)r][key] for key in (%(sample)r, %(background)r))]
jobs = [(stack, start, stop) for stack in stacks for start, stop in passes.block_ranges(stack)]
buffers = {}
def lane(index):
    for stack, start, stop in jobs[index::threads]:
        key = (index, stop - start)
        if key not in buffers:
            buffers[key] = [np.empty((stop - start,) + f.shape[1:], f.dtype) for f in stack.files]
        for f, out in zip(stack.files, buffers[key]):
            f.read_frames(start, stop, out=out)
cpu0, start = time.process_time(), time.perf_counter()
with ThreadPoolExecutor(threads) as pool:
    list(pool.map(lane, range(threads)))
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
print(json.dumps({"seconds": seconds, "cpu": cpu, "bytes": sum(s.nbytes for s in stacks),
                  "block_frames": jobs[0][2] - jobs[0][1], "chunk_frames": stacks[0].files[0].chunk_frames,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""" % {"proposal": PROPOSAL, "sample": SAMPLE, "background": BACKGROUND}


def tree_files(base):
    """The two HDF5 files of the tree in ``base`` (sample and background)."""
    from eqegs_repo.simulate import synthetic

    root = synthetic.eqegs_root(base) / PROPOSAL
    return [root / key / H5 for key in (SAMPLE, BACKGROUND)]


def ensure_tree(base, codec, preset):
    """Write the tree of ``codec`` and ``preset`` into ``base`` unless it is there; seed its spice."""
    from eqegs_repo.simulate import synthetic

    if not all(path.exists() for path in tree_files(base)):
        print(f"writing the {preset} {codec} tree into {base} (once; reused afterwards) ...", flush=True)
        began = time.perf_counter()
        synthetic.write_tree(base, preset=preset, seed=0, proposals=(PROPOSAL,), samples_per_proposal=1,
                             format="hdf5", compression=codec, overwrite=True)
        print(f"  written in {time.perf_counter() - began:.0f} s", flush=True)
    seed_spice(str(base), preset)


def child(code, *args):
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], check=True, text=True,
                         stdout=subprocess.PIPE)
    return json.loads(out.stdout.splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="folder of the full-size trees (written once)")
    parser.add_argument("--codecs", nargs="+", default=["zstd", "bitshuffle"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--preset", default="full", help="size preset of the trees (small: a quick check)")
    args = parser.parse_args(argv)
    from eqegs_repo.cooking import cook

    for codec in args.codecs:
        ensure_tree(args.dir / f"{args.preset}-{codec}", codec, args.preset)
    threads = cook.WORKERS
    for codec in args.codecs:  # warm the page cache: both measurements decompress from memory
        for path in tree_files(args.dir / f"{args.preset}-{codec}"):
            with open(path, "rb") as f:
                while f.read(64 << 20):
                    pass
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {threads} lanes and "
          f"decompressing threads; page cache warm; medians of {args.repeat}")
    results = {codec: {"decompress": [], "chain": []} for codec in args.codecs}
    for _ in range(args.repeat):
        for codec in args.codecs:
            base = args.dir / f"{args.preset}-{codec}"
            results[codec]["decompress"].append(child(DECOMPRESS, base, threads))
            results[codec]["chain"].append(child(CHAIN, base))
    print(f"{'codec':<11} {'raw GB':>7} {'file GB':>8} | {'decompress s':>12} {'GB/s':>5} | {'chain s':>8} "
          f"{'CPU s':>6} | {'chain/decompress':>16} | {'peak RSS MiB':>12} | target")
    for codec in args.codecs:
        files = sum(path.stat().st_size for path in tree_files(args.dir / f"{args.preset}-{codec}"))
        dec = statistics.median(r["seconds"] for r in results[codec]["decompress"])
        chains = results[codec]["chain"]
        chain = statistics.median(r["seconds"] for r in chains)
        cpu = statistics.median(r["cpu"] for r in chains)
        peak = max(r["peak_mib"] for r in chains)
        raw = results[codec]["decompress"][0]["bytes"]
        ratio = chain / dec
        met = "met" if ratio <= 1.5 and peak <= 1024 else "MISSED"
        print(f"{codec:<11} {raw / 1e9:7.2f} {files / 1e9:8.2f} | {dec:12.2f} {raw / dec / 1e9:5.2f} | {chain:8.2f} "
              f"{cpu:6.2f} | {ratio:16.2f} | {peak:12.0f} | {met} (<= 1.5, <= 1024 MiB)")
        last = chains[-1]
        print(f"  {codec}: runs decompress {[round(r['seconds'], 2) for r in results[codec]['decompress']]}, "
              f"chain {[round(r['seconds'], 2) for r in chains]}; blocks of "
              f"{results[codec]['decompress'][0]['block_frames']} frames, chunks of "
              f"{results[codec]['decompress'][0]['chunk_frames']}; tau = {last['tau']:.1f} +- "
              f"{last['tau_error']:.1f} ns, f_q = {last['f_q']:.3f} +- {last['f_q_error']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
