"""Spice benchmark: write, load and resolve 10,000 records on local disk.

Run: ``python benchmarks/bench_spice.py [--records 10000] [--folder DIR]``

Prints: write rate; cold load of every record file (list + read + safe-load + check + index);
a refresh with nothing new; one resolved view (defaults < repository < proposal, every type)
and views of every sample. Targets (issue 3): views resolve in under 50 ms once loaded;
loading 10,000 record files takes under 3 s.
"""
import argparse
import os
import statistics
import tempfile
import time

import spice
from eqegs_repo.params import types as params

TYPES = {  # type -> function(i) giving the changed fields of revision i
    "roi": lambda i: {"x0": i % 100, "y0": 5, "x1": 100 + i % 100, "y1": 200},
    "q_range": lambda i: {"q_min": 1.0 + i % 7, "q_max": 20.0 + i % 5},
    "sp_param": lambda i: {"start_cut_frames": i % 9},
    "calibration": lambda i: {"velocity_number": i % 4, "angle_number": 0, "note": f"row {i}"},
    "q_integration": lambda i: {"bg_sample_id": f"S{i % 50:03d}", "forward_box_halfwidth": 20,
                                "sectors": [[10.0, 80.0], [190.0, 260.0]],
                                "angle_mode": "specify"},
}


def write_records(folder, n_records, revisions=4):
    """Write n_records through Collection.seed/update: types x anchors x revisions."""
    collection = spice.Collection(spice.LocalStore(folder, fsync=False),
                                  registry=params.REGISTRY, scope="proposal")
    n_anchors = n_records // (len(TYPES) * revisions)
    count = 0
    for a in range(n_anchors):
        anchor = "" if a == 0 else f"S{a:04d}"
        for type_name, make in TYPES.items():
            collection.seed(type_name, anchor, make(a))
            for r in range(1, revisions):
                collection.update(type_name, anchor, make(a + r))
            count += revisions
    return count, n_anchors


def timed(function, repeat=1):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--folder", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        base = args.folder or temp
        folder = os.path.join(base, "proposal-spice")
        repo_folder = os.path.join(base, "repository-spice")
        (count, n_anchors), (t_write,) = timed(lambda: write_records(folder, args.records))
        print(f"write     {count} records through Collection.seed/update: {t_write:.2f} s "
              f"({count / t_write:.0f} records/s, fsync off)")
        repo = spice.Collection(repo_folder, registry=params.REGISTRY, scope="repository")
        repo.seed("q_range", "", q_min=10.0, q_max=14.0)
        repo.seed("geometry", "P1", distance_mm=120.0, wavelength_nm=0.086025)

        proposal = spice.Collection(folder, registry=params.REGISTRY, scope="proposal",
                                    listing_ttl=None)
        _, (t_load,) = timed(proposal.refresh)
        assert len(proposal) == count and proposal.problems == []
        print(f"load      {count} record files cold (list, read, safe-load, check, index): "
              f"{t_load:.2f} s  [target < 3 s]")
        _, t_refresh = timed(proposal.refresh, repeat=5)
        print(f"refresh   listing {count} files, nothing new: "
              f"{1e3 * statistics.median(t_refresh):.1f} ms")

        keys = [f"S{a:04d}" for a in range(1, n_anchors)] + ["S9999"]

        def one_view():
            view = spice.ResolvedView([("repository", repo, "P1"),
                                       ("proposal", proposal, keys[len(keys) // 2])],
                                      params.REGISTRY)
            return view.to_dict()

        values, t_view = timed(one_view, repeat=50)
        assert values["roi"]["y1"] == 200
        print(f"view      one sample, {len(values)} types, over {count} records: median "
              f"{1e3 * statistics.median(t_view):.2f} ms, max {1e3 * max(t_view):.2f} ms  "
              f"[target < 50 ms]")

        def all_views():
            return [spice.ResolvedView([("repository", repo, "P1"), ("proposal", proposal, k)],
                                       params.REGISTRY).to_dict() for k in keys]

        _, (t_all,) = timed(all_views)
        print(f"views     all {len(keys)} samples: {1e3 * t_all:.0f} ms "
              f"({1e3 * t_all / len(keys):.2f} ms per view)")
        history, (t_hist,) = timed(lambda: proposal.history("roi"))
        print(f"history   roi ({len(history)} records): {1e3 * t_hist:.1f} ms")


if __name__ == "__main__":
    main()
