"""Speed of Q integration at full size (issue 5): ours against pyFAI, scaling, workers, build time.

Prints, for 728 x 384 frames with a 101 x 101 px direct-beam box masked and 1 px radial bins:
- the build time of the sparse matrix (``RadialIntegrator.build``) and of the first call (pixel
  labels, numba compilation or loading from numba's disk cache); both happen once per integrator;
- throughput in Gpx/s (frames x pixels per wall-clock second) and in Gpx per CPU-second of this
  process, for each engine (numba, scipy), uint32 and float32 frames, 1 and 2 workers, and the
  speed-up from 1 to 2 workers;
- pyFAI ``integrate1d`` (unit r_mm, same bins, same mask, no solid-angle correction) with each
  of its fast CPU methods on the same frames in the same run, a check that its bin sums equal
  ours, and the ratio ours / pyFAI's fastest;
- time against frames (512 ... 4092) and against pixels, to show that the cost is linear.

Every figure is the median of ``--repeats`` runs.  The machine is shared, so configurations that
are compared (1 vs 2 workers, ours vs pyFAI) are run in turn within each repetition, so that
they see the same load; the load average is printed, and the CPU-second figure is the one
other processes affect least.

Frames: ``--pool`` distinct synthetic Poisson frames (mean 3 counts) are made in memory once;
a run of N frames streams blocks of ``--block`` frames cycling through the pool.  The pool
(128 frames = 143 MB of uint32) is far larger than the CPU caches, so every block is read
from memory, as a block read from disk would be; no 4.6 GB file is written.

Run:  python benchmarks/bench_q_integration.py [--frames 4092] [--block 128] [--repeats 5]
Needs the ``bench`` extra (pyFAI, numba) for the full table: pip install -e ".[bench]".
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import time

import numpy as np

from eqegs_repo.kernels import physics
from eqegs_repo.kernels import q_integration as qi

SHAPE = (728, 384)
CENTRE = (190.3, 300.7)
GEOMETRY = qi.DetectorGeometry(wavelength_nm=physics.WAVELENGTH_NM, pixel_size_mm=physics.PIXEL_SIZE_MM,
                               distance_mm=100.0)
DIRECT_BEAM_HALFWIDTH = 50
FRAME_COUNTS = (512, 1024, 2048, 4092)
PIXEL_SHAPES = ((728, 96), (728, 192), (728, 384), (1456, 384))
PYFAI_METHODS = (("no", "csr", "cython"), ("no", "csc", "cython"), ("no", "histogram", "cython"),
                 ("bbox", "csr", "cython"))


def build_integrator(shape: tuple[int, int]) -> qi.RadialIntegrator:
    """The benchmark's integrator: direct-beam box masked, 1 px bins out to the farthest pixel."""
    keep = qi.direct_beam_keep(shape, centre=CENTRE, halfwidth=DIRECT_BEAM_HALFWIDTH)
    r_max = float(qi.pixel_radius(shape, centre=CENTRE).max()) + 1.0
    return qi.RadialIntegrator.build(shape, centre=CENTRE, geometry=GEOMETRY,
                                     bins=qi.RadialBins.uniform(bin_px=1.0, r_max_px=r_max), keep=keep)


def interleaved_medians(runs: dict, repeats: int) -> dict:
    """{name: (median wall-clock s, median CPU s of this process, all threads)} of each ``run()``
    in ``runs``; every repetition runs them all in turn, so they share the machine's load."""
    walls = {name: [] for name in runs}
    cpus = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
    return {name: (statistics.median(walls[name]), statistics.median(cpus[name])) for name in runs}


def stream(integrator: qi.RadialIntegrator, pool: np.ndarray, n_frames: int, block: int, workers: int,
           engine: str) -> np.ndarray:
    """Integrate ``n_frames`` frames as blocks of ``block`` frames cycling through ``pool``;
    returns the run's total per bin (so nothing is optimised away)."""
    total = np.zeros(integrator.n_bins)
    done = 0
    while done < n_frames:
        start = done % pool.shape[0]
        size = min(block, n_frames - done, pool.shape[0] - start)
        total += integrator.integrate(pool[start:start + size], workers=workers, engine=engine).sum(axis=0)
        done += size
    return total


def poisson_pool(n_frames: int, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(3.0, size=(n_frames,) + shape).astype(np.uint32)


def pyfai_integrator(shape: tuple[int, int]):
    """A pyFAI AzimuthalIntegrator with our geometry: PONI at the beam centre (pyFAI measures
    from the detector corner, our centre from the centre of pixel (0, 0))."""
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    pixel_m = GEOMETRY.pixel_size_mm * 1e-3
    detector = Detector(pixel1=pixel_m, pixel2=pixel_m, max_shape=shape)
    return AzimuthalIntegrator(dist=GEOMETRY.distance_mm * 1e-3, poni1=(CENTRE[1] + 0.5) * pixel_m,
                               poni2=(CENTRE[0] + 0.5) * pixel_m, detector=detector,
                               wavelength=GEOMETRY.wavelength_nm * 1e-9)


def compare_with_pyfai(integrator: qi.RadialIntegrator, frames: np.ndarray, args, engine: str, workers: int) -> None:
    """pyFAI's fast CPU methods frame by frame on ``frames``, and ours on the same frames cycled to
    ``args.frames``, in turn within each repetition; prints rates, bin-sum checks and the ratio."""
    try:
        import pyFAI
    except ImportError:
        print("pyFAI not installed (pip install -e '.[bench]'): no comparison")
        return
    logging.getLogger("pyFAI").setLevel(logging.ERROR)
    ai = pyfai_integrator(SHAPE)
    images = frames.reshape((frames.shape[0],) + SHAPE)
    mask = ~qi.direct_beam_keep(SHAPE, centre=CENTRE, halfwidth=DIRECT_BEAM_HALFWIDTH)  # pyFAI: nonzero = masked
    radial_range = (float(integrator.bins.edges_px[0]) * GEOMETRY.pixel_size_mm,
                    float(integrator.bins.edges_px[-1]) * GEOMETRY.pixel_size_mm)
    ours = integrator.integrate(frames)

    def pyfai_run(method):
        return lambda: [ai.integrate1d(image, integrator.n_bins, unit="r_mm", method=method, mask=mask,
                                       radial_range=radial_range, correctSolidAngle=False) for image in images]

    runs = {"ours": lambda: stream(integrator, frames, args.frames, args.block, workers, engine)}
    checks = {}
    for method in PYFAI_METHODS:
        setup = time.perf_counter()
        result = ai.integrate1d(images[-1], integrator.n_bins, unit="r_mm", method=method, mask=mask,
                                radial_range=radial_range, correctSolidAngle=False)
        setup = time.perf_counter() - setup
        diff = np.abs(np.asarray(result.sum_signal).ravel() - ours[-1]).max()
        checks[method] = (setup, "identical bin sums" if diff == 0 else
                          f"bin sums differ (pixel splitting): max |diff| / max = {diff / ours[-1].max():.2g}")
        runs[method] = pyfai_run(method)
    timings = interleaved_medians(runs, args.repeats)

    print(f"\npyFAI {pyFAI.version} integrate1d, unit r_mm, {integrator.n_bins} bins, same mask, "
          f"{frames.shape[0]} frames one by one, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
          f"median of {args.repeats}, in turn with ours:")
    pyfai_rates = {}
    for method in PYFAI_METHODS:
        wall, cpu = timings[method]
        pyfai_rates[method] = (frames.size / wall / 1e9, frames.size / cpu / 1e9)
        setup, same = checks[method]
        print(f"  {str(method):32s} {pyfai_rates[method][0] * 1e3:6.1f} Mpx/s ({frames.shape[0] / wall:5.0f} frames/s), "
              f"{pyfai_rates[method][1] * 1e3:6.1f} Mpx per CPU-s, first call {setup * 1e3:4.0f} ms; {same}")
    fastest = max(PYFAI_METHODS, key=lambda m: pyfai_rates[m][0])
    leanest = max(PYFAI_METHODS, key=lambda m: pyfai_rates[m][1])
    wall, cpu = timings["ours"]
    pixels = args.frames * frames.shape[1]
    ours_rate, ours_cpu_rate = pixels / wall / 1e9, pixels / cpu / 1e9
    print(f"  ours ({engine}, uint32, {workers} worker(s), these {frames.shape[0]} frames cycled to {args.frames}): "
          f"{ours_rate:.2f} Gpx/s, {ours_cpu_rate:.2f} Gpx per CPU-s")
    print(f"  ratio ours / pyFAI: {ours_rate / pyfai_rates[fastest][0]:.1f}x wall-clock (against its fastest, {fastest}); "
          f"{ours_cpu_rate / pyfai_rates[leanest][1]:.1f}x per CPU-second (against its most CPU-efficient, {leanest})")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=4092, help="frames per throughput measurement")
    parser.add_argument("--block", type=int, default=128, help="frames per block")
    parser.add_argument("--pool", type=int, default=128, help="distinct synthetic frames in memory")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions; medians are printed")
    parser.add_argument("--pyfai-frames", type=int, default=128, help="frames integrated by pyFAI and by us for the ratio")
    args = parser.parse_args()

    engines = ["numba", "scipy"] if qi.labelled_sum_kernel() is not None else ["scipy"]
    print(f"load average {load()} on {os.cpu_count()} cores; engines {engines} (auto = {engines[0]})")

    (build_wall, _), = interleaved_medians({"build": lambda: build_integrator(SHAPE)}, args.repeats).values()
    integrator = build_integrator(SHAPE)
    print(f"matrix build 728x384, {integrator.n_bins} bins of 1 px, nnz {integrator.matrix.nnz}: "
          f"{build_wall * 1e3:.0f} ms (median of {args.repeats}); once per integrator")
    pool = poisson_pool(args.pool, SHAPE).reshape(args.pool, -1)
    pools = {"uint32": pool, "float32": pool.astype(np.float32)}
    for engine in engines:
        first = time.perf_counter()
        integrator.integrate(pool[:2], engine=engine)
        print(f"first call, engine {engine} (labels / scatter copy, compile or load the kernel): "
              f"{(time.perf_counter() - first) * 1e3:.0f} ms; once per integrator (numba: once per process and dtype)")
        for data in pools.values():
            integrator.integrate(data[:2], engine=engine, workers=2)

    pixels = args.frames * SHAPE[0] * SHAPE[1]
    print(f"\nthroughput, {args.frames} frames of 728x384 in blocks of {args.block} "
          f"(median of {args.repeats}, all rows in turn; Gpx/s wall, Gpx per CPU-second):")
    runs = {(engine, name, workers): (lambda e=engine, d=data, w=workers: stream(integrator, d, args.frames, args.block, w, e))
            for engine in engines for name, data in pools.items() for workers in (1, 2)}
    rates = {key: (pixels / wall / 1e9, pixels / cpu / 1e9)
             for key, (wall, cpu) in interleaved_medians(runs, args.repeats).items()}
    for engine in engines:
        for name in pools:
            row = [f"{w} worker(s) {rates[engine, name, w][0]:5.2f} Gpx/s ({pixels / rates[engine, name, w][0] / 1e9:5.2f} s), "
                   f"{rates[engine, name, w][1]:5.2f} per CPU-s" for w in (1, 2)]
            speedup = rates[engine, name, 2][0] / rates[engine, name, 1][0]
            print(f"  {engine:5s} {name:7s}  " + "  |  ".join(row) + f"  |  1 -> 2 workers x{speedup:.2f}")
    print(f"  load average now {load()}")

    engine = engines[0]
    best_workers = max((1, 2), key=lambda w: rates[engine, "uint32", w][0])
    compare_with_pyfai(integrator, pool[:min(args.pyfai_frames, args.pool)], args, engine, best_workers)
    print(f"  load average now {load()}")

    print(f"\ntime against frames (728x384 uint32, engine {engine}, blocks of {args.block}, median of {args.repeats}):")
    print("  frames | 1 worker: wall s  CPU s  us/frame  Gpx/s | 2 workers: wall s  CPU s  us/frame  Gpx/s | x")
    runs = {(n, w): (lambda n=n, w=w: stream(integrator, pool, n, args.block, w, engine))
            for n in FRAME_COUNTS for w in (1, 2)}
    timings = interleaved_medians(runs, args.repeats)
    for n_frames in FRAME_COUNTS:
        cells = [f"{wall:16.3f} {cpu:6.3f} {wall / n_frames * 1e6:9.0f} {n_frames * pool.shape[1] / wall / 1e9:6.2f}"
                 for wall, cpu in (timings[n_frames, 1], timings[n_frames, 2])]
        print(f"  {n_frames:6d} |" + " |".join(cells) + f" | x{timings[n_frames, 1][0] / timings[n_frames, 2][0]:.2f}")

    n_frames = 1024
    print(f"\ntime against pixels ({n_frames} uint32 frames, engine {engine}, same centre and mask, 1 px bins, "
          f"median of {args.repeats}):")
    print("  shape      pixels  bins | build ms | 1 worker: wall s  CPU s  ns/px | 2 workers: wall s  CPU s  ns/px | x")
    big = poisson_pool(args.pool, PIXEL_SHAPES[-1], seed=1)
    runs, sized = {}, {}
    for shape in PIXEL_SHAPES:
        frames = np.ascontiguousarray(big[:, :shape[0], :shape[1]]).reshape(args.pool, -1)
        (build, _), = interleaved_medians({"build": lambda: build_integrator(shape)}, 3).values()
        sized[shape] = (build_integrator(shape), frames, build)
        sized[shape][0].integrate(frames[:2], engine=engine)
        for workers in (1, 2):
            runs[shape, workers] = (lambda s=shape, w=workers: stream(sized[s][0], sized[s][1], n_frames, args.block, w, engine))
    timings = interleaved_medians(runs, args.repeats)
    for shape in PIXEL_SHAPES:
        shaped, frames, build = sized[shape]
        cells = [f"{wall:16.3f} {cpu:6.3f} {wall / (n_frames * frames.shape[1]) * 1e9:6.3f}"
                 for wall, cpu in (timings[shape, 1], timings[shape, 2])]
        print(f"  {shape[0]:4d}x{shape[1]:<4d} {frames.shape[1]:7d} {shaped.n_bins:5d} | {build * 1e3:8.0f} |"
              + " |".join(cells) + f" | x{timings[shape, 1][0] / timings[shape, 2][0]:.2f}")
    print(f"load average at the end {load()}")


if __name__ == "__main__":
    main()
