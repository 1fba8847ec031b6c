"""The whole chain for one full-size sample with background against the time to read both files.

    python benchmarks/make_full_tree.py /tmp/eqegs-full      # once: 2 x 4.6 GB
    python benchmarks/bench_full_chain.py /tmp/eqegs-full [--repeat 3] [--workers 1 2] [--cold]

Each chain runs in a fresh process (so its peak RSS is its own) with an empty result cache:
``sample.cook("e_spectrum_and_isf")`` (reconstruction + q integration with background + E
spectrum and ISF, 500 Monte-Carlo resamples), with ``cook.WORKERS`` lanes, on each path:

* ``fused``: reconstruction and q integration in one read of the sample (the default);
* ``separate``: ``cook.FUSE = False``, the reconstruction reads the sample, then the integration
  reads it again (the path before issue 14).

The read floor is ``cat`` of the sample's and the background's sensor files to /dev/null. Floors
and chains alternate within each repetition, so they see the same load (the machine is shared);
medians are printed. ``chain`` is measured in a fresh process, including first-use costs
(numba loading its compiled kernels, xarray importing dask.array: about 0.6-0.8 s); ``warm``
first cooks a tiny synthetic sample in the same process, so it leaves those out. ``read`` is
the process's ``rchar`` (bytes read through read(2)-like calls) during the chain.

``--cold`` drops the files' pages from the page cache before every floor and chain
(``posix_fadvise(POSIX_FADV_DONTNEED)``; ``--drop-caches`` writes 1 to /proc/sys/vm/drop_caches
instead, when permitted) to measure reading from the disk; it also reads the files as the passes
do, computing nothing, with and without the read-ahead hints (``PREFETCH_BLOCKS``).
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

PROPOSAL, SAMPLE = "2025A1234", "S001"

CHILD = r"""
import atexit, json, resource, shutil, sys, tempfile, time
from eqegs_repo import Repository
from eqegs_repo.cooking import cook
from eqegs_repo.simulate import synthetic
base, workers, fuse, warm = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "fused", sys.argv[4] == "warm"
cook.WORKERS, cook.FUSE = workers, fuse
if warm:
    from eqegs_repo.simulate import demo
    tiny = tempfile.mkdtemp(prefix="bench-warm-")
    atexit.register(shutil.rmtree, tiny, True)
    tree = synthetic.write_tree(tiny, proposals=("2025A1234",), preset="tiny", seed=1, samples_per_proposal=1)
    truth = synthetic.load_truth(tiny, tree.account, "2025A1234", "S001")
    prop = Repository(tree.url(), spice_url="memory://warm", cache_url=False)["2025A1234"]
    demo.seed_spice(prop, truth.params, bg_n_points=8, isf_error_threshold=0.1, n_mc=20)
    prop["S001"].cooked
root = synthetic.eqegs_root(base)
cache = tempfile.mkdtemp(prefix="bench-cache-")
atexit.register(shutil.rmtree, cache, True)
repo = Repository(f"{root}/{{proposal}}/{{sample}}", spice_url=f"{base}/bench-spice", cache_url=cache)
sample = repo[%(proposal)r][%(sample)r]

def rchar():
    with open("/proc/self/io") as handle:
        return int(next(line for line in handle if line.startswith("rchar")).split()[1])

read0, cpu0, start = rchar(), time.process_time(), time.perf_counter()
ds = sample.cook("e_spectrum_and_isf")
chain, cpu, read = time.perf_counter() - start, time.process_time() - cpu0, rchar() - read0
q = sample.cook("q_integration")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"chain": chain, "cpu": cpu, "read": read, "peak_mib": peak, "passes": q.attrs["passes"],
                  "centre": [q.attrs["centre_x"], q.attrs["centre_y"]], "tau": float(ds.tau),
                  "tau_error": float(ds.tau_error), "f_q": float(ds.f_q), "f_q_error": float(ds.f_q_error),
                  "n_mc": ds.attrs["isf_parameters"]["n_mc"]}))
""" % {"proposal": PROPOSAL, "sample": SAMPLE}


def seed_spice(base, preset):
    """Spice matching the simulation of ``preset``, in ``<base>/bench-spice`` (written once)."""
    from eqegs_repo import Repository
    from eqegs_repo.simulate import synthetic

    root = synthetic.eqegs_root(base)
    repo = Repository(f"{root}/{{proposal}}/{{sample}}", spice_url=f"{base}/bench-spice")
    prop = repo[PROPOSAL]
    if len(prop.spice.records()):
        return
    params = synthetic.preset_params(preset)
    for name, values in synthetic.spice_mappings(params).items():
        prop.spice.seed(name, **{k: v for k, v in values.items() if k != "schema_version"})
    prop.spice.seed("q_integration", bg_sample_id=synthetic.BACKGROUND_SAMPLE_ID,
                    **synthetic.suggested_boxes(params))
    prop.spice.seed("velocity_calibration", kind="poly", poly_coeffs=[0.0, 1.0])
    prop.spice.seed("angle_calibration", kind="cos2theta")
    prop.spice.seed("q_range", q_min=11.0, q_max=13.0)
    prop.spice.seed("e_spectrum", n_mc=500)


def sensor_files(base, samples=(SAMPLE, "S000_noise")):
    """The sensor files of ``samples`` (the sample and its background by default)."""
    from eqegs_repo.simulate import synthetic

    root = synthetic.eqegs_root(base)
    return sorted(f for s in samples for f in glob.glob(f"{root}/{PROPOSAL}/{s}/train_integrated/sensor_*.npy"))


def evict(files, drop_caches=False):
    """Drop the files' pages from the page cache; returns how."""
    if drop_caches:
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("1\n")
        return "drop_caches"
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return "posix_fadvise(DONTNEED)"


def read_floor(files):
    """Seconds to ``cat`` the files to /dev/null."""
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run(["cat", *files], stdout=null, check=True)
    return time.perf_counter() - start


def stream_floor(base, prefetch, samples=(SAMPLE, "S000_noise")):
    """Seconds to read the samples' sensor files with the cooking passes' own reading (2 lanes,
    blocks of passes.BLOCK_BYTES, ``prefetch`` blocks announced ahead), computing nothing."""
    from eqegs_repo import Repository
    from eqegs_repo.cooking import passes
    from eqegs_repo.simulate import synthetic

    repo = Repository(f"{synthetic.eqegs_root(base)}/{{proposal}}/{{sample}}", spice_url=f"{base}/bench-spice")
    stacks = []
    for key in samples:
        sample = repo[PROPOSAL][key]
        stacks.append(_stack(sample))
    saved, passes.PREFETCH_BLOCKS = passes.PREFETCH_BLOCKS, prefetch
    try:
        start = time.perf_counter()
        for stack in stacks:
            passes._stream(stack, passes.block_ranges(stack), 2, lambda *block: None)
        return time.perf_counter() - start
    finally:
        passes.PREFETCH_BLOCKS = saved


def _stack(sample):
    from eqegs_repo.io.run import open_run

    return open_run(sample.fs, sample.path, sample.marker, sample.layout).stack


def chain(base, workers, path, warm):
    out = subprocess.run([sys.executable, "-c", CHILD, base, str(workers), path, "warm" if warm else "cold"],
                         check=True, text=True, stdout=subprocess.PIPE)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", help="base directory written by make_full_tree.py")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--paths", nargs="+", default=["fused", "separate"], choices=["fused", "separate"])
    parser.add_argument("--preset", default="full", help="preset the tree was written with")
    parser.add_argument("--cold", action="store_true", help="drop the files from the page cache before each run")
    parser.add_argument("--drop-caches", action="store_true", help="with --cold: echo 1 > /proc/sys/vm/drop_caches")
    parser.add_argument("--no-warm", action="store_true", help="skip the warm-process chains")
    args = parser.parse_args()
    seed_spice(args.directory, args.preset)
    files = sensor_files(args.directory)
    size = sum(os.path.getsize(f) for f in files)
    if not args.cold:
        read_floor(files)  # warm the page cache
    how = evict(files, args.drop_caches) if args.cold else "page cache warm"
    print(f"{len(files)} sensor files, {size / 1e9:.2f} GB (sample {SAMPLE} + background); {how}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    kinds = [(w, p, warm) for w in args.workers for p in args.paths for warm in ((False,) if args.no_warm else (False, True))]
    prefetches = (2, 0) if args.cold else (2,)
    floors, streams, runs = [], {n: [] for n in prefetches}, {kind: [] for kind in kinds}
    for repeat in range(args.repeat):
        for kind in kinds:
            if args.cold:
                evict(files, args.drop_caches)
            floors.append(read_floor(files))
            for prefetch in prefetches:
                if args.cold:
                    evict(files, args.drop_caches)
                streams[prefetch].append(stream_floor(args.directory, prefetch))
            if args.cold:
                evict(files, args.drop_caches)
            runs[kind].append(chain(args.directory, *kind))
        print(f"  repetition {repeat + 1}: cat {', '.join(f'{f:.2f}' for f in floors[-len(kinds):])} s; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
    floor = statistics.median(floors)
    print(f"read floor (cat of both files): median {floor:.2f} s ({size / floor / 1e9:.1f} GB/s), "
          f"range {min(floors):.2f}-{max(floors):.2f} s over {len(floors)} reads")
    for prefetch, times in streams.items():
        median = statistics.median(times)
        print(f"reading alone as the passes read (2 lanes, blocks of 16 MiB, {prefetch} blocks announced ahead): "
              f"median {median:.2f} s ({size / median / 1e9:.1f} GB/s), range {min(times):.2f}-{max(times):.2f} s")
    print(f"{'workers':>7} {'path':>8} {'process':>7} | {'chain s':>7} {'range':>11} {'/floor':>6} | "
          f"{'CPU s':>5} {'read GB':>7} {'/size':>5} {'peak MiB':>8} | sample reads")
    for kind in kinds:
        workers, path, warm = kind
        done = runs[kind]
        times = [r["chain"] for r in done]
        median = statistics.median(times)
        read = statistics.median(r["read"] for r in done)
        print(f"{workers:7d} {path:>8} {'warm' if warm else 'fresh':>7} | {median:7.2f} {min(times):5.2f}-{max(times):5.2f} "
              f"{median / floor:6.2f} | {statistics.median(r['cpu'] for r in done):5.2f} {read / 1e9:7.2f} "
              f"{read / size:5.2f} {max(r['peak_mib'] for r in done):8.0f} | {done[-1]['passes']['sample_reads']}")
    results = {(r["tau"], r["f_q"], tuple(r["centre"])) for rs in runs.values() for r in rs}
    r = runs[kinds[0]][-1]
    print(f"result: tau = {r['tau']:.2f} +- {r['tau_error']:.2f} ns, f_q = {r['f_q']:.4f} +- {r['f_q_error']:.4f}, "
          f"centre ({r['centre'][0]:.4f}, {r['centre'][1]:.4f}) px, n_mc {r['n_mc']}; "
          f"{'identical on every path and run' if len(results) == 1 else f'{len(results)} different results!'}")


if __name__ == "__main__":
    main()
