"""Time of the whole chain against frames and against pixels: is it linear?

    python benchmarks/bench_chain_scaling.py DIR [--repeat 3]

Writes (once, kept in DIR) synthetic sample + background trees of uint32 frames:

* frames: 1024, 2048 and 4092 frames of the medium canvas (364 x 192 px);
* pixels: 1024 frames of the small (182 x 96), medium (364 x 192) and full (728 x 384) canvases;

about 6.5 GB in all. Each chain (``sample.cook("e_spectrum_and_isf")``, fused path, 2 lanes,
500 Monte-Carlo resamples) runs in a fresh process that first cooks a tiny sample, so start-up
(imports, numba loading) is left out; page cache warm; medians of ``--repeat`` runs, in turn.
Linear means a constant time per frame and pixel (ns / (frames x pixels) of sample and background)
on top of a fixed cost (plans, E spectrum): a least-squares line through the cases is printed.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_full_chain import chain, read_floor, seed_spice, sensor_files  # noqa: E402

CASES = [("frames", "medium", 1024), ("frames", "medium", 2048), ("frames", "medium", 4092),
         ("pixels", "small", 1024), ("pixels", "medium", 1024), ("pixels", "full", 1024)]


def tree(base, preset, n_frames):
    """The tree of one case under ``base`` (written when missing)."""
    from eqegs_repo.simulate import synthetic

    folder = os.path.join(base, f"{preset}-{n_frames}")
    if not os.path.exists(os.path.join(folder, "UserData")):
        synthetic.write_tree(folder, preset=preset, seed=0, proposals=("2025A1234",), samples_per_proposal=1,
                             n_frames=n_frames, dtype="uint32")
    seed_spice(folder, preset)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", help="where the trees are written (kept)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from eqegs_repo.simulate import synthetic

    folders = {}
    for _, preset, n_frames in CASES:
        start = time.perf_counter()
        folders[preset, n_frames] = tree(args.directory, preset, n_frames)
        if time.perf_counter() - start > 1:
            print(f"wrote {preset} x {n_frames} frames in {time.perf_counter() - start:.0f} s", flush=True)
    times = {case: [] for case in folders}
    floors = {case: [] for case in folders}
    for _ in range(args.repeat):
        for case, folder in folders.items():
            files = sensor_files(folder)
            floors[case].append(read_floor(files))
            times[case].append(chain(folder, 2, "fused", True))
    print(f"2 cores, load average {os.getloadavg()[0]:.1f}; fused chain, 2 lanes, warm process, page cache warm; "
          f"medians of {args.repeat}")
    print(f"{'against':>7} {'canvas':>9} {'frames':>6} {'Mpx/frame':>9} {'GB':>5} | {'chain s':>7} {'range':>11} "
          f"{'ns/(frame px)':>13} | {'cat s':>5} {'chain/cat':>9} | {'CPU s':>5} {'peak MiB':>8}")
    sizes, chains = [], []
    for against, preset, n_frames in CASES:
        case = (preset, n_frames)
        runs = times[case]
        chain_s = statistics.median(r["chain"] for r in runs)
        layout = synthetic.preset_params(preset).sensor_layout
        pixels = layout.canvas_shape[0] * layout.canvas_shape[1]
        size = sum(os.path.getsize(f) for f in sensor_files(folders[case]))
        floor = statistics.median(floors[case])
        print(f"{against:>7} {'x'.join(map(str, layout.canvas_shape)):>9} {n_frames:6d} {pixels / 1e6:9.3f} "
              f"{size / 1e9:5.2f} | {chain_s:7.2f} {min(r['chain'] for r in runs):5.2f}-{max(r['chain'] for r in runs):5.2f} "
              f"{chain_s / (2 * n_frames * pixels) * 1e9:13.3f} | {floor:5.2f} {chain_s / floor:9.2f} | "
              f"{statistics.median(r['cpu'] for r in runs):5.2f} {max(r['peak_mib'] for r in runs):8.0f}")
        sizes.append(2 * n_frames * pixels)
        chains.append(chain_s)
    slope, intercept = np.polyfit(sizes, chains, 1)
    worst = max(abs(t - (intercept + slope * n)) / t for n, t in zip(sizes, chains))
    print(f"least-squares line: chain = {intercept:.2f} s + {slope * 1e9:.3f} ns x frames x pixels (sample and "
          f"background); largest deviation {100 * worst:.0f} % of a chain")


if __name__ == "__main__":
    main()
