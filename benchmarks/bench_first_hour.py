"""What a new user waits for in the first hour: ``eqegs --help``, and a reanalysis with nothing
left to do (every sample of an already cooked demo tree is up to date).

    python benchmarks/bench_first_hour.py [--dir DIR] [--repeat 5]

Prints the median, min and max wall time of

* ``eqegs --help``, each run a new process (``python -m eqegs_repo --help``: the same code as
  the ``eqegs`` script);
* ``repo.reanalyze(progress=False)`` in a new process (interpreter start, imports, opening the
  repository and the call), and the call alone inside that process;
* the same call in a process that has made it once already (warmed up).

``--dir`` names a demo folder (``eqegs demo DIR``); without it, or when DIR holds no demo tree,
one is written and cooked first (not timed).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REANALYSE = """\
import sys, time
started = time.perf_counter()
from eqegs_repo import Repository
repo = Repository(sys.argv[1])
table = repo.reanalyze(progress=False)
assert set(table.status) <= {"up-to-date", "background"}, set(table.status)  # nothing cooked
print(time.perf_counter() - started)
"""


def summary(label, seconds):
    """One line: median, min and max in ms of ``seconds``."""
    ms = [1000 * s for s in seconds]
    return (f"{label:<44} median {statistics.median(ms):8.1f} ms   min {min(ms):8.1f}   max {max(ms):8.1f}"
            f"   ({len(ms)} runs)")


def timed_run(words, env):
    """(wall seconds, stdout) of a subprocess."""
    started = time.perf_counter()
    result = subprocess.run(words, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - started, result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="a demo folder (written and cooked when missing)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (default 5)")
    args = parser.parse_args()
    env = dict(os.environ)
    base = Path(args.dir or tempfile.mkdtemp(prefix="eqegs-first-hour-"))
    root = base / "UserData" / "u0000000" / "EQEGS"
    if not root.is_dir():
        print(f"writing and cooking a demo tree in {base} (not timed) ...", flush=True)
        subprocess.run([sys.executable, "-m", "eqegs_repo", "demo", str(base)], env=env, check=True,
                       capture_output=True)
    url = f"{root}/{{proposal}}/{{sample}}"

    timed_run([sys.executable, "-m", "eqegs_repo", "--help"], env)  # the files into the page cache
    help_times = [timed_run([sys.executable, "-m", "eqegs_repo", "--help"], env)[0] for _ in range(args.repeat)]
    print(summary("eqegs --help (new process)", help_times), flush=True)

    fresh, inner = [], []
    for _ in range(args.repeat):
        wall, out = timed_run([sys.executable, "-c", REANALYSE, url], env)
        fresh.append(wall)
        inner.append(float(out.strip().splitlines()[-1]))
    print(summary("reanalyze, nothing to do: new process", fresh))
    print(summary("  of which imports, repository and call", inner), flush=True)

    from eqegs_repo import Repository

    repo = Repository(url)
    repo.reanalyze(progress=False)  # warm-up
    warm = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        repo.reanalyze(progress=False)
        warm.append(time.perf_counter() - started)
    print(summary("reanalyze, nothing to do: warm process", warm))
    print(f"(tree: {root}, {sum(len(repo[k].keys()) for k in repo.keys())} sample folders)")


if __name__ == "__main__":
    main()
