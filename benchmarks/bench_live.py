"""Watch following growing samples: latency from a rewrite to its history row, and a sped-up night.

Latency (issue 22: <= 10 s at full size on 2 cores): a sample with its background is written
(``--preset full``: 4092 frames x 3 sensors of 728 x 128, uint32, with a background run), watch
follows it in a thread (``--interval`` s), and the sample is grown ``--growths`` times
(``synthetic.grow_sample``: more trains, counts scaling; ``--grow in-place`` rewrites the files
where they are, ``rename`` writes the folder beside and renames it; ``rewrite`` writes the same
counts again in place, a quick stand-in when simulating 4.6 GB per growth takes too long). The latency of a growth is
the time from the end of the rewrite to the sample's new history row (``on_update``); it holds
up to two intervals of the settle rule plus the cook. The median is printed.

Night (``--night``): ``--night-samples`` tiny samples grown round-robin ``--night-growths`` times
in all, each growth waited for; prints the RSS after the first round and at the end, and checks
that the history (in memory and read back from its files) has one row per cook, none lost.

    python benchmarks/bench_live.py /scratch/eqegs-live                # full size, 5 growths
    python benchmarks/bench_live.py /tmp/eqegs-live --preset small    # quick check
    python benchmarks/bench_live.py /tmp/eqegs-night --night          # the night only

``--live-page PATH`` passes ``eqegs_repo.live_page.LivePage(PATH)`` as ``on_update`` as well,
so the page's time is in the latency (when that module exists).
"""
import argparse
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

from eqegs_repo import Repository
from eqegs_repo.cooking.progress import quiet
from eqegs_repo.errors import PhysicsWarning
from eqegs_repo.simulate import demo, synthetic
from eqegs_repo.watch import read_history, watch

PROPOSAL = "2025A1234"


def rss_mib():
    """Resident set size of this process now (MiB, from /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def live_page(path):
    """``LivePage(path)`` of eqegs_repo.live_page, or exit with a message when it is not there."""
    if path is None:
        return None
    if importlib.util.find_spec("eqegs_repo.live_page") is None:
        sys.exit("--live-page: eqegs_repo.live_page is not in this version of the library")
    from eqegs_repo.live_page import LivePage

    return LivePage(path)


class Follower:
    """watch(...) in a thread; ``arrivals`` {(sample, n_trains): perf_counter time of the row}."""

    def __init__(self, repo, samples, interval, page=None):
        self.arrivals, self.rows, self.cooks = {}, [], []
        self.condition, self.stop, self.page = threading.Condition(), threading.Event(), page
        self.history_dir = tempfile.mkdtemp(prefix="bench-live-history-")  # a history of this run only
        self.thread = threading.Thread(target=self._run, args=(repo, samples, interval), daemon=True)

    def _run(self, repo, samples, interval):
        with quiet():
            watch(repo, proposals=PROPOSAL, samples=samples, interval=interval, stop=self.stop, existing=True,
                  on_update=self._updated, on_result=self.cooks.append, history_dir=self.history_dir)

    def _updated(self, history, sample, row):
        if self.page is not None:
            self.page(history, sample, row)
        with self.condition:
            self.rows.append(row)
            self.arrivals[(row["sample"], row["n_trains"])] = time.perf_counter()
            self.condition.notify_all()

    def wait_for(self, keys, timeout):
        with self.condition:
            return self.condition.wait_for(lambda: all(k in self.arrivals for k in keys), timeout=timeout)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        shutil.rmtree(self.history_dir, ignore_errors=True)


def tree(folder, preset, samples, n_mc=200, reuse=False, **overrides):
    """A synthetic tree of one proposal with seeded spice and a cache; ``(repo, params, seeds)``.
    ``reuse``: keep the tree of an earlier run when its truth files are all there."""
    keys = [f"S{k:03d}" for k in range(1, samples + 1)]
    truths_there = all(synthetic.truth_stem(folder, synthetic.DEFAULT_ACCOUNT, PROPOSAL, k).with_suffix(".json").exists()
                       for k in keys + [synthetic.BACKGROUND_SAMPLE_ID])
    if not (reuse and truths_there):
        if folder.exists():
            shutil.rmtree(folder)
        synthetic.write_tree(folder, preset=preset, proposals=(PROPOSAL,), samples_per_proposal=samples, **overrides)
    demo.write_config(folder)
    repo = Repository(str(synthetic.eqegs_root(folder)))
    truths = {k: synthetic.load_truth(folder, synthetic.DEFAULT_ACCOUNT, PROPOSAL, k) for k in keys}
    params = truths[keys[0]].params
    if not repo[PROPOSAL].spice.history("q_range"):
        demo.seed_spice(repo[PROPOSAL], params, bg_n_points=8, isf_error_threshold=0.1, n_mc=n_mc)
    return repo, {k: t.params for k, t in truths.items()}, {k: t.record["seed"] for k, t in truths.items()}


def rewrite_files(folder, grown, chunk=64 << 20):
    """A quick stand-in for new trains (``--grow rewrite``): every byte of the sample's sensor
    files written again in place, chunk by chunk (new modification times, the same counts), then
    the marker's ``trains_integrated`` set to ``grown`` (beside, renamed). Watch and the cook do the
    work of a real growth (the whole sample read again); the fit gives the same τ."""
    for sensor in sorted(Path(folder, "train_integrated").glob("sensor_*.npy")):
        with open(sensor, "r+b") as f:
            while block := f.read(chunk):
                f.seek(-len(block), os.SEEK_CUR)
                f.write(block)
    marker_path = Path(folder, "train_integrated.json")
    marker = json.loads(marker_path.read_text())
    marker.update(trains_integrated=grown)
    temp = marker_path.with_name(".train_integrated.json.partial")
    temp.write_text(json.dumps(marker, indent=1))
    os.replace(temp, marker_path)


def latency(args):
    print(f"a {args.preset} sample and its background in {args.directory} (written unless --reuse finds them) ...",
          flush=True)
    start = time.perf_counter()
    repo, params, seeds = tree(args.directory / "latency", args.preset, 1, reuse=args.reuse)
    key = next(iter(params))
    print(f"  ready in {time.perf_counter() - start:.0f} s", flush=True)
    base = params[key]
    folder = repo[PROPOSAL][key].path
    now = repo[PROPOSAL][key].marker["trains_integrated"]  # more than the truth's after a --reuse
    latencies, cooks = [], []
    with Follower(repo, key, args.interval, live_page(args.live_page)) as follower:
        if not follower.wait_for([(key, now)], timeout=1800):
            sys.exit("the first cook gave no history row in 30 min")
        print(f"first cook: {follower.cooks[-1]['duration_s']:.1f} s", flush=True)
        for growth in range(1, args.growths + 1):
            trains = now + growth * args.step_trains
            began = time.perf_counter()
            if args.grow == "rewrite":
                rewrite_files(folder, trains)
            else:
                synthetic.grow_sample(folder, base, seeds[key], trains, in_place=args.grow == "in-place")
            written = time.perf_counter()
            if not follower.wait_for([(key, trains)], timeout=1800):
                sys.exit(f"growth {growth}: no history row in 30 min")
            latencies.append(follower.arrivals[(key, trains)] - written)
            cooks.append(follower.cooks[-1]["duration_s"])
            row, cooked = follower.rows[-1], follower.cooks[-1]
            fit = (f"tau = {row['tau_ns']:.4g} +- {row['tau_err_ns']:.2g} ns, target at "
                   f"{row['projected_exposure_s']:.4g} s") if row["tau_ns"] is not None else cooked["error"]
            print(f"growth {growth}: {trains} trains written in {written - began:.0f} s; row after "
                  f"{latencies[-1]:.2f} s (cook {cooks[-1]:.2f} s, {row['status']}); {fit}", flush=True)
    print(f"latency, end of rewrite -> history row: median {statistics.median(latencies):.2f} s of "
          f"{len(latencies)} growths (max {max(latencies):.2f} s; cook median {statistics.median(cooks):.2f} s; "
          f"interval {args.interval:g} s; target <= 10 s)")


def night(args):
    # the tiny preset's ±2 mm/s window cuts the lines' tails: every cook would warn so (the checks
    # are in each history row all the same)
    warnings.simplefilter("ignore", PhysicsWarning)
    samples = args.night_samples
    repo, params, seeds = tree(args.directory / "night", "tiny", samples, n_mc=20, dtype="uint32")
    keys = list(params)
    rounds = max(1, args.night_growths // samples)
    with Follower(repo, keys, args.night_interval, live_page(args.live_page)) as follower:
        if not follower.wait_for([(k, params[k].trains_integrated) for k in keys], timeout=600):
            sys.exit("the first cooks gave no history rows in 10 min")
        first, started = rss_mib(), time.perf_counter()
        for r in range(1, rounds + 1):
            wanted = []
            for k in keys:
                trains = params[k].trains_integrated + r * 10
                synthetic.grow_sample(repo[PROPOSAL][k].path, params[k], seeds[k], trains)
                wanted.append((k, trains))
            if not follower.wait_for(wanted, timeout=600):
                sys.exit(f"round {r}: rows missing after 10 min: {[w for w in wanted if w not in follower.arrivals]}")
        last, elapsed = rss_mib(), time.perf_counter() - started
        rows = len(follower.rows)
        stored = len(read_history(repo, history_dir=follower.history_dir))
    expected = samples * (rounds + 1)
    print(f"night: {rounds * samples} growths of {samples} samples in {elapsed:.0f} s; history rows "
          f"{rows} passed to on_update, {stored} in the files, {expected} expected (lost: {expected - stored})")
    print(f"RSS after the first cooks {first:.0f} MiB, at the end {last:.0f} MiB "
          f"({last - first:+.0f} MiB over {rounds * samples} growths)")
    if stored != expected or rows != expected:
        sys.exit("history rows were lost")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="base directory (its latency/ and night/ are replaced)")
    parser.add_argument("--preset", default="full", choices=sorted(synthetic.PRESETS))
    parser.add_argument("--growths", type=int, default=5)
    parser.add_argument("--step-trains", type=int, default=500, help="trains added by each growth")
    parser.add_argument("--grow", choices=("in-place", "rename", "rewrite"), default="in-place",
                        help="how a growth rewrites the sample: grow_sample in place or beside and renamed (a new "
                             "simulation: minutes at full size on a busy machine), or rewrite: the same counts "
                             "written again in place (see rewrite_files)")
    parser.add_argument("--reuse", action="store_true", help="keep the latency tree of an earlier run")
    parser.add_argument("--interval", type=float, default=1.0, help="watch interval of the latency run (s)")
    parser.add_argument("--night", action="store_true", help="run the night only")
    parser.add_argument("--no-night", action="store_true", help="run the latency only")
    parser.add_argument("--night-samples", type=int, default=4)
    parser.add_argument("--night-growths", type=int, default=200)
    parser.add_argument("--night-interval", type=float, default=0.05)
    parser.add_argument("--live-page", metavar="PATH", default=None,
                        help="also update the live page at PATH (eqegs_repo.live_page.LivePage)")
    args = parser.parse_args(argv)
    if not args.night:
        latency(args)
    if not args.no_night:
        night(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
