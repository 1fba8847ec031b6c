"""The live view's share of a watch's latency: one call of ``LivePage`` (the table, tau against
exposure, the ISF of the sample just cooked read from the cache, the atomic rewrite) and of
``LiveWidget``, after a night's history.

    python benchmarks/bench_live_page.py [--samples 8] [--rows 100] [--repeat 5]

A tiny synthetic sample is written and cooked first (not timed); the history holds ``--rows``
rows for each of ``--samples`` samples. Prints the median, min and max wall time of a call and
the size of the page. The rows have no fingerprint, so the ISF is drawn on every call (a row
with the fingerprint of the ISF shown keeps it). The ISF figure does not depend on the raw
data's size, so a full-size sample costs the page the same.
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from eqegs_repo import Repository
from eqegs_repo.live_page import LivePage, LiveWidget
from eqegs_repo.simulate import demo, synthetic

PROPOSAL = "2025A0001"


def cooked_sample(base):
    """S001 of a tiny synthetic tree under ``base``, cooked (its result in the cache)."""
    values = {"n_frames": 512, "v_max_mm_s": 10.0}
    tree = synthetic.write_tree(base, preset="tiny", seed=1, proposals=(PROPOSAL,), samples_per_proposal=1,
                                **values)
    repo = Repository(tree.url(), cache_url=f"{base}/cache")
    demo.seed_spice(repo[PROPOSAL], synthetic.preset_params("tiny", **values), background=tree.background_id,
                    n_mc=50)
    sample = repo[PROPOSAL]["S001"]
    sample.cook("e_spectrum_and_isf")
    return sample


def history(samples, rows):
    """A night's history: ``rows`` growing cooks of each of ``samples`` samples (S001 last)."""
    out = []
    for growth in range(rows):
        for index in reversed(range(samples)):
            out.append({"time": pd.Timestamp("2026-01-01T20:00") + pd.Timedelta(minutes=growth),
                        "proposal": PROPOSAL, "sample": f"S{index + 1:03d}", "n_trains": 10 * (growth + 1),
                        "exposure_s": 60.0 * (growth + 1), "tau_ns": 100.0 + index, "tau_err_ns": 20 / np.sqrt(growth + 1),
                        "f_q": 0.7, "f_q_err": 0.05, "status": "ok", "fingerprint": "", "projected_exposure_s": 960.0})
    return pd.DataFrame(out)


def timed(call, repeat):
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def summary(label, seconds):
    ms = [1000 * s for s in seconds]
    return f"{label:<40} median {statistics.median(ms):8.1f} ms   min {min(ms):8.1f}   max {max(ms):8.1f}   ({len(ms)} runs)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--rows", type=int, default=100, help="history rows per sample")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="eqegs-live-"))
    sample = cooked_sample(base / "tree")
    table = history(args.samples, args.rows)
    row = table.iloc[-1].to_dict()
    page = LivePage(base / "live.html")
    page(table, sample, row)  # warm: matplotlib imported, fonts cached
    print(f"history: {len(table)} rows ({args.samples} samples x {args.rows} cooks)")
    print(summary("LivePage call (table, 2 figures, rename)", timed(lambda: page(table, sample, row), args.repeat)))
    print(f"page size: {(base / 'live.html').stat().st_size / 1e3:.0f} kB")
    try:
        widget = LiveWidget()
    except ImportError as exc:
        print(f"LiveWidget: not measured ({exc})")
    else:
        print(summary("LiveWidget call", timed(lambda: widget(table, sample, row), args.repeat)))


if __name__ == "__main__":
    main()
