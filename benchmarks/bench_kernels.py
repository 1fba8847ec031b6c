"""Speed of the cooking-step kernels at full size (issue 5 targets).

Prints:
- the build time of the sparse radial-integration matrix for a 728 x 384 image;
- Q-integration throughput in Gpx/s over N frames of 728 x 384 (float32 and uint32 blocks), with
  1 and 2 worker threads, and, for comparison, the batched ``M @ block.T`` product;
- the time of E spectrum + ISF with 500 Monte-Carlo resamples for 4092 frames.

The frames are streamed as blocks of ``--block`` frames taken from one pre-filled buffer, so the
benchmark needs only one block of memory (a 4092-frame float32 stack would be 4.6 GB); every
block is a fresh pass over memory larger than the CPU caches.

Run:  python benchmarks/bench_kernels.py [--frames 4092] [--block 128]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from eqegs_repo import forward as fm
from eqegs_repo.steps import e_spectrum as es
from eqegs_repo.steps import q_integration as qi

SHAPE = (728, 384)
CENTRE = (190.3, 300.7)
GEOMETRY = qi.DetectorGeometry(fm.WAVELENGTH_NM, fm.PIXEL_SIZE_MM, 100.0)


def build_integrator() -> tuple[qi.RadialIntegrator, float]:
    start = time.perf_counter()
    keep = qi.direct_beam_keep(SHAPE, CENTRE, 50)
    r_max = float(qi.pixel_radius(SHAPE, CENTRE).max()) + 1.0
    integrator = qi.RadialIntegrator.build(SHAPE, CENTRE, GEOMETRY, qi.RadialBins.uniform(1.0, r_max), keep)
    return integrator, time.perf_counter() - start


def throughput(integrator: qi.RadialIntegrator, block: np.ndarray, n_frames: int, workers: int) -> tuple[float, float]:
    """(Gpx per wall-clock second, Gpx per CPU second of this process) of integrating
    ``n_frames`` frames as successive passes over ``block``.  The CPU figure does not depend on
    other processes sharing the cores; times the number of free cores it bounds the wall rate."""
    integrator.integrate(block[:8], workers)  # warm-up
    n_blocks = max(1, n_frames // block.shape[0])
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(n_blocks):
        integrator.integrate(block, workers)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    pixels = n_blocks * block.shape[0] * SHAPE[0] * SHAPE[1]
    return pixels / elapsed / 1e9, pixels / cpu / 1e9


def batched_throughput(integrator: qi.RadialIntegrator, block: np.ndarray) -> float:
    """Gpx/s of the batched product M @ block.reshape(f, -1).T on the frames-first layout."""
    flat = block.reshape(block.shape[0], -1)
    start = time.perf_counter()
    integrator.matrix @ flat.T
    return flat.size / (time.perf_counter() - start) / 1e9


def e_spectrum_time(n_frames: int, n_mc: int) -> tuple[float, float, es.IsfResult]:
    """Seconds for energy_spectra and for isf_from_spectra on a 60-bin q range."""
    velocity = fm.drive_velocity(n_frames, "band_limited_triangle", 10.0)
    q = np.linspace(10.0, 14.0, 60)
    mu_f, mu_q = fm.spectral_only_counts(velocity, q, 0.7, 100.0, forward_counts=2e5, qe_counts=2e4 / q.size)
    rng = np.random.default_rng(0)
    forward, qe = rng.poisson(mu_f).astype(float), rng.poisson(mu_q).astype(float)
    g = es.angle_factor("cos2theta", fm.two_theta_from_q(q))
    start = time.perf_counter()
    spectra = es.energy_spectra(forward, forward, qe, qe, q, g, velocity, 10.0, 14.0)
    middle = time.perf_counter()
    result = es.isf_from_spectra(spectra, n_mc=n_mc, seed=1, isf_error_threshold=0.03)
    return middle - start, time.perf_counter() - middle, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=4092, help="frames to integrate per measurement")
    parser.add_argument("--block", type=int, default=128, help="frames per block")
    parser.add_argument("--mc", type=int, default=500, help="Monte-Carlo resamples")
    args = parser.parse_args()

    integrator, build_s = build_integrator()
    print(f"matrix build (728x384, 1 px bins, {integrator.n_bins} bins, nnz {integrator.matrix.nnz}): {build_s * 1e3:.0f} ms")

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    rng = np.random.default_rng(0)
    counts = rng.poisson(3.0, size=(args.block,) + SHAPE).astype(np.uint32)
    blocks = {"float32": counts.astype(np.float32), "uint32": counts}
    for name, block in blocks.items():
        for workers in (1, 2):
            rate, per_cpu = throughput(integrator, block, args.frames, workers)
            print(f"Q integration {args.frames} x 728 x 384 {name}, blocks of {args.block}, {workers} worker(s): "
                  f"{rate:.2f} Gpx/s wall ({args.frames * SHAPE[0] * SHAPE[1] / rate / 1e9:.2f} s), "
                  f"{per_cpu:.2f} Gpx per CPU-second")
    print(f"batched M @ block.T on a float32 block of {args.block} (for comparison): "
          f"{batched_throughput(integrator, blocks['float32']):.2f} Gpx/s")

    spectra_s, isf_s, result = e_spectrum_time(4092, args.mc)
    fit = result.fit
    print(f"E spectrum (4092 frames, 60 q bins): {spectra_s * 1e3:.0f} ms; ISF + {args.mc} MC + fit: {isf_s * 1e3:.0f} ms "
          f"(tau = {fit.tau_ns:.1f} +- {fit.tau_error_ns:.1f} ns, f = {fit.f_q:.3f} +- {fit.f_q_error:.3f})")


if __name__ == "__main__":
    main()
