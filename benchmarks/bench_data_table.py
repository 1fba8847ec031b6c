"""data_table.csv import at the limit and beyond it (issue 20, L8).

Run: ``python benchmarks/bench_data_table.py [--samples 1000] [--repeat 3]``

Prints, each in a new process (median of ``--repeat``; peak memory above the process after its
imports):

- ``dry run``: checking a table of ``MAX_TABLE_ROWS`` (100,000) rows against a proposal of
  ``--samples`` samples, and formatting its report;
- ``import``: the same table written (one ``calibration`` record per sample, fsync on as
  for a user);
- ``refused``: tables of 1,000,000 rows (the size of the issue): short rows (10 MB) refused at
  the row limit, rows with a comment (35 MB) at the byte limit before they are read.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import io, json, resource, sys, time
from eqegs_repo import Repository
from spice import SpiceError

root, path, mode = sys.argv[1:]
proposal = Repository(root + "/{proposal}/{sample}")["2025A1234"]
keys = proposal.sample_keys()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    report = proposal.spice.import_data_table(path, dry_run=mode != "import")
    outcome = f"{len(report.written)} written, {len(report.unmatched)} unmatched"
    io.StringIO().write(repr(report))
except SpiceError as exc:
    outcome = "refused: " + str(exc).split(";")[0].split(" (")[0]
elapsed = time.perf_counter() - start
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"seconds": elapsed, "mb": grown, "outcome": outcome}))
"""


def write_table(path, rows, comment=True):
    """A data_table.csv of ``rows`` rows: samples 1, 2, ... in order, with or without a comment."""
    with open(path, "w") as handle:
        handle.write("sample_name, velocity, angle, comment\n")
        handle.writelines(f"{number:03d},{number % 7},{number % 3}"
                          + (f",row {number} of the table\n" if comment else "\n")
                          for number in range(1, rows + 1))


def run(root, path, mode):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CHILD, root, path, mode], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # the repository root: tests.helpers
    import fsspec

    from eqegs_repo.params.data_table import MAX_TABLE_BYTES, MAX_TABLE_ROWS
    from tests.helpers import treeutil

    with tempfile.TemporaryDirectory() as folder:
        treeutil.write_tree(fsspec.filesystem("file"), f"{folder}/tree",
                            {"2025A1234": [f"S{i:03d}" for i in range(1, args.samples + 1)]})
        tables = {"limit": f"{folder}/limit.csv", "rows": f"{folder}/rows.csv",
                  "bytes": f"{folder}/bytes.csv"}
        write_table(tables["limit"], MAX_TABLE_ROWS)
        write_table(tables["rows"], 1_000_000, comment=False)  # under the byte limit
        write_table(tables["bytes"], 1_000_000)
        sizes = {name: os.path.getsize(path) / 1e6 for name, path in tables.items()}
        print(f"limits: {MAX_TABLE_ROWS} rows, {MAX_TABLE_BYTES} bytes; proposal of "
              f"{args.samples} samples; {args.repeat} runs each, new process each")
        for label, table, mode, fresh in (
                ("dry run", "limit", "dry-run", False), ("import", "limit", "import", True),
                ("refused", "rows", "dry-run", False), ("refused", "bytes", "dry-run", False)):
            runs = []
            for attempt in range(args.repeat):
                tree = f"{folder}/tree"
                if fresh:  # every import run starts from a proposal without records
                    tree = f"{folder}/tree{attempt}"
                    shutil.copytree(f"{folder}/tree", tree)
                runs.append(run(tree, tables[table], mode))
            seconds = statistics.median(r["seconds"] for r in runs)
            memory = statistics.median(r["mb"] for r in runs)
            print(f"{label:8} {sizes[table]:5.1f} MB table: {seconds:6.2f} s, peak memory "
                  f"+{memory:5.0f} MB  ({runs[0]['outcome']})")


if __name__ == "__main__":
    main()
