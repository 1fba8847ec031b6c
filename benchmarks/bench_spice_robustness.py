"""Spice under hostile files and contention (issue 12 rows 1 and 11).

Run: ``python benchmarks/bench_spice_robustness.py [--processes 8] [--updates 50]``

Prints:

- how long a proposal with an alias bomb ("billion laughs", 10**9 values once expanded) in each
  of the ten record keys takes to list (``table()``) and to resolve a sample's view, and the
  peak memory of that process (target: under 1 s, no memory growth);
- ``--processes`` x ``--updates`` updates of one (type, anchor) with ``retry=True`` on a local
  folder (fsync off): failures (target 0), wall time, and the most attempts one update needed;
  once as is and once with every publication 2 ms slower (a slow disk, which widens races).
"""
import argparse
import multiprocessing
import resource
import tempfile
import time
import warnings

import fsspec

import spice
from eqegs_repo import Repository

GOOD = ("format: spice/1\ntype: q_range\nuuid: 00000000-0000-4000-8000-000000000001\n"
        "revision: 1\nanchor: ''\ncreated: '2025-01-01T00:00:00.000000Z'\nauthor: a\n"
        "comment: ''\nparent: null\nschema_version: 1\ndata: {q_min: 10.0, q_max: 14.0}\n")
BOMB = "[" + ", ".join(["&l0 [x, x, x, x, x, x, x, x, x, x]"] + [
    f"&l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]) + "]"
KEYS = ("format", "type", "uuid", "revision", "anchor", "created", "author", "comment",
        "parent", "data")


def bombs(folder):
    """A two-sample proposal whose .spice holds one good record and ten bomb files."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: tests.helpers
    from tests.helpers import treeutil

    treeutil.write_tree(fsspec.filesystem("file"), folder, {"2025A1234": ["S001", "S002"]})
    store = Path(folder) / "2025A1234" / ".spice"
    store.mkdir()
    (store / "q_range..r000001.yaml").write_text(GOOD)
    for key in KEYS:
        text = "".join(f"{key}: {BOMB}\n" if line.startswith(f"{key}:") else line + "\n"
                       for line in GOOD.splitlines())
        (store / f"bomb-{key}.yaml").write_text(text)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        proposal = Repository(f"{folder}/{{proposal}}/{{sample}}")["2025A1234"]
        rows = len(proposal.table())
        status = proposal["S002"].spice.status
    elapsed = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    skipped = len([w for w in caught if issubclass(w.category, spice.SpiceWarning)])
    print(f"bombs     {len(KEYS)} bomb files: table ({rows} rows) + view ({status}) in "
          f"{elapsed:.3f} s, {skipped} files skipped with a warning, peak memory +{grown:.0f} MB"
          "  [target < 1 s]")


class CountingStore(spice.LocalStore):
    """Counts publication attempts; each takes ``delay`` seconds longer."""

    attempts = 0
    delay = 0.0

    def publish(self, name, payload):
        self.attempts += 1
        time.sleep(self.delay)
        super().publish(name, payload)


def writer(folder, worker, updates, delay, queue):
    store = CountingStore(folder, fsync=False)
    store.delay = delay
    collection = spice.Collection(store, listing_ttl=0.05, author=f"w{worker}")
    failures, most = 0, 0
    for i in range(updates):
        before = store.attempts
        try:
            collection.update("alpha", "S1", retry=True, **{f"w{worker}": i})
        except spice.SpiceConflict:
            failures += 1
        most = max(most, store.attempts - before)
    queue.put((failures, most))


def race(processes, updates, delay):
    folder = tempfile.mkdtemp()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=writer, args=(folder, w, updates, delay, queue))
               for w in range(processes)]
    start = time.perf_counter()
    for process in workers:
        process.start()
    results = [queue.get(timeout=600) for _ in workers]
    for process in workers:
        process.join()
    elapsed = time.perf_counter() - start
    stored = len(spice.Collection(folder).records("alpha", "S1"))
    print(f"retry     {processes} processes x {updates} updates of one anchor, retry=True, "
          f"publication +{delay * 1e3:.0f} ms: "
          f"{sum(r[0] for r in results)} failures, {stored} records, {elapsed:.2f} s, "
          f"at most {max(r[1] for r in results)} attempts for one update  [target 0 failures]")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--updates", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bombs(folder)
    for delay in (0.0, 0.002):
        race(args.processes, args.updates, delay)


if __name__ == "__main__":
    main()
