"""The whole chain for one full-size sample with background subtraction: wall time per step and
peak resident memory, result cache cold, page cache warm.

    python benchmarks/make_full_tree.py /tmp/eqegs-full      # once: 2 x 4.6 GB
    python benchmarks/bench_full_chain.py /tmp/eqegs-full [--repeat 3] [--profile]

Each repetition runs in a fresh process (so its peak RSS is its own) with an empty result cache:
reconstruction + q_integration (sample and background) + e_spectrum_and_isf with 500 Monte-Carlo
resamples. The chain's CPU time (all threads) is printed too: on a shared machine it varies less
than the wall time. Targets (issue 5): <= 10 s wall (stretch 5 s), <= 2 GB peak RSS.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PROPOSAL, SAMPLE = "2025A1234", "S001"

CHILD = r"""
import json, resource, sys, tempfile, time
from eqegs_repo import Repository
from eqegs_repo.cooking import cook
from eqegs_repo.simulate import synthetic
base, profile = sys.argv[1], sys.argv[2] == "1"
root = synthetic.eqegs_root(base)
repo = Repository(f"{root}/{{proposal}}/{{sample}}", spice_url=f"{base}/bench-spice",
                  cache_url=tempfile.mkdtemp(prefix="bench-cache-"))
sample = repo[%(proposal)r][%(sample)r]
times = {}
def run():
    for step in ("reconstruction", "q_integration", "e_spectrum_and_isf"):
        start = time.perf_counter()
        ds = sample.cook(step)
        times[step] = time.perf_counter() - start
    return ds
cpu_start = time.process_time()
if profile:
    import cProfile, pstats
    profiler = cProfile.Profile()
    ds = profiler.runcall(run)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
else:
    ds = run()
cpu = time.process_time() - cpu_start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"times": times, "cpu": cpu, "peak_mib": peak, "tau": float(ds.tau), "tau_error": float(ds.tau_error),
                  "f_q": float(ds.f_q), "f_q_error": float(ds.f_q_error), "n_mc": ds.attrs["isf_parameters"]["n_mc"]}))
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


def warm_page_cache(base):
    total, start = 0, time.perf_counter()
    for folder, _, files in os.walk(os.path.join(base, "UserData")):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                while chunk := handle.read(64 << 20):
                    total += len(chunk)
    return total, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", help="base directory written by make_full_tree.py")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--preset", default="full", help="preset the tree was written with")
    parser.add_argument("--profile", action="store_true", help="cProfile one run (to stderr)")
    args = parser.parse_args()
    seed_spice(args.directory, args.preset)
    size, seconds = warm_page_cache(args.directory)
    print(f"page cache warmed: {size / 1e9:.1f} GB read in {seconds:.1f} s; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    runs = []
    for i in range(1 if args.profile else args.repeat):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD, args.directory, "1" if args.profile else "0"],
                             check=True, text=True, stdout=subprocess.PIPE)
        wall = time.perf_counter() - start
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["process_wall"] = wall
        runs.append(result)
        t = result["times"]
        print(f"run {i + 1}: reconstruction {t['reconstruction']:.2f} s, q_integration "
              f"{t['q_integration']:.2f} s, e_spectrum_and_isf {t['e_spectrum_and_isf']:.2f} s, "
              f"chain {sum(t.values()):.2f} s (CPU {result['cpu']:.2f} s, all threads), process {wall:.2f} s, "
              f"peak RSS {result['peak_mib']:.0f} MiB")
    chain = statistics.median(sum(r["times"].values()) for r in runs)
    peak = max(r["peak_mib"] for r in runs)
    r = runs[-1]
    print(f"median chain {chain:.2f} s (target <= 10 s, stretch 5 s); peak RSS {peak:.0f} MiB "
          f"(target <= 2048 MiB); n_mc {r['n_mc']}")
    print(f"result: tau = {r['tau']:.1f} +- {r['tau_error']:.1f} ns, f_q = {r['f_q']:.3f} +- "
          f"{r['f_q_error']:.3f}")


if __name__ == "__main__":
    main()
