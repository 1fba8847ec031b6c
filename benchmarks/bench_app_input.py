"""The chain from the raw data against the chain from the app's reconstruction.npy, one sample
with background (docs/reanalysis.md#from-the-apps-work).

    python benchmarks/bench_app_input.py [--preset small|medium|full] [--repeat 3] [DIR]

Writes a synthetic sample and its background run of the preset (into DIR, default a temporary
folder removed at the end), exports both reconstructions (the app's stacks, float32), then cooks
``e_spectrum_and_isf`` without the result cache, alternately with ``input="raw"`` and
``input="app_reconstruction"`` (so both see the same load; the machine may be shared), and
prints the median times, their ratio, the bytes of each input and the relative difference of τ
and f_q. Both are read once (fused reconstruction and integration): the raw sample's uint16 or
uint32 counts, or the app's float32 stack.
"""
import argparse
import shutil
import statistics
import tempfile
import time

from eqegs_repo import Repository
from eqegs_repo.cooking import progress
from eqegs_repo.simulate import demo, synthetic

PROPOSAL = "2025A1234"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", default=None)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base = args.dir or tempfile.mkdtemp(prefix="bench-app-input-")
    try:
        params = synthetic.preset_params(args.preset)
        synthetic.write_sample(f"{base}/{PROPOSAL}/{synthetic.BACKGROUND_SAMPLE_ID}", params, seed=2,
                               background=True)
        synthetic.write_sample(f"{base}/{PROPOSAL}/S001", params, seed=1)
        repo = Repository(f"{base}/{{proposal}}/{{sample}}", spice_url="memory://bench-app-input", cache_url=False)
        prop = repo[PROPOSAL]
        demo.seed_spice(prop, params, bg_n_points=8, n_mc=500)
        with progress.quiet():
            for key in (synthetic.BACKGROUND_SAMPLE_ID, "S001"):
                prop[key].export("reconstruction")
            sample = prop["S001"]
            times = {"raw": [], "app_reconstruction": []}
            results = {}
            for _ in range(args.repeat):
                for source in times:
                    start = time.perf_counter()
                    results[source] = sample.cook("e_spectrum_and_isf", use_cache=False, input=source)
                    times[source].append(time.perf_counter() - start)
        raw_bytes = sum(sample.info()["files"].values())
        stack = results["app_reconstruction"].attrs["input"]
        print(f"preset {args.preset}: {params.n_frames} frames of {'x'.join(map(str, params.sensor_layout.canvas_shape))} px, "
              f"{args.repeat} repetitions, medians")
        print(f"{'input':<20}{'chain s':>10}{'MB read per pass':>18}")
        for source, values in times.items():
            size = raw_bytes if source == "raw" else stack["size"]
            print(f"{source:<20}{statistics.median(values):>10.2f}{size / 1e6:>18.1f}")
        ratio = statistics.median(times["app_reconstruction"]) / statistics.median(times["raw"])
        print(f"ratio app_reconstruction / raw: {ratio:.2f}")
        for name in ("tau", "f_q"):
            a, b = float(results["raw"][name]), float(results["app_reconstruction"][name])
            print(f"{name}: raw {a!r}, app {b!r}, relative difference {abs(a - b) / abs(a):.1e}")
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
