"""Samples per minute of `reanalyze` with 1 and 2 local worker processes.

    python benchmarks/bench_reanalysis.py [--presets small medium] [--samples 4] [--dir DIR]

For each preset a synthetic proposal (a background run and N samples) is written once into DIR
(default: a temporary folder), spice matching the simulation is seeded, and the whole chain is
cooked for the N samples with a cold result cache, first with 1 then with 2 worker processes.
The figures include starting and stopping the local cluster.
"""
import argparse
import os
import tempfile
import time

from eqegs_repo import Repository, batch
from eqegs_repo.simulate import synthetic


def seed(prop, params, background_id):
    for name, values in synthetic.spice_mappings(params).items():
        prop.spice.seed(name, replace=True, **{k: v for k, v in values.items() if k != "schema_version"})
    prop.spice.seed("q_integration", replace=True, bg_sample_id=background_id,
                    **synthetic.suggested_boxes(params))
    prop.spice.seed("velocity_calibration", replace=True, kind="poly", poly_coeffs=[0.0, 1.0])
    prop.spice.seed("angle_calibration", replace=True, kind="cos2theta")
    prop.spice.seed("q_range", replace=True, q_min=11.0, q_max=13.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "medium"])
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--dir", default=None, help="where to write the trees (kept)")
    args = parser.parse_args()
    base = args.dir or tempfile.mkdtemp(prefix="eqegs-bench-")
    print(f"trees in {base}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    print(f"{'preset':8} {'frames':>6} {'canvas':>9} {'MB/sample':>9} {'workers':>7} "
          f"{'wall s':>7} {'samples/min':>11} {'status':>12}")
    for preset in args.presets:
        folder = os.path.join(base, preset)
        if not os.path.exists(folder):
            synthetic.write_tree(folder, proposals=("2025A1234",), preset=preset, seed=5,
                                 samples_per_proposal=args.samples)
        root = synthetic.eqegs_root(folder)
        params = synthetic.preset_params(preset)
        mb = synthetic.PRESETS[preset].bytes_per_sample() / 1e6
        for workers in (1, 2):
            repo = Repository(f"{root}/{{proposal}}/{{sample}}", spice_url=f"{folder}/spice",
                              cache_url=tempfile.mkdtemp(prefix="cache-", dir=folder))
            seed(repo["2025A1234"], params, synthetic.BACKGROUND_SAMPLE_ID)
            start = time.perf_counter()
            table = batch.reanalyze(repo, samples="S0[0-9][1-9]", workers=workers, progress=False)
            wall = time.perf_counter() - start
            status = ",".join(f"{n} {s}" for s, n in table.status.value_counts().items())
            print(f"{preset:8} {params.n_frames:6d} {'x'.join(map(str, params.sensor_layout.canvas_shape)):>9} "
                  f"{mb:9.0f} {workers:7d} {wall:7.1f} {60 * len(table) / wall:11.1f} {status:>12}")


if __name__ == "__main__":
    main()
