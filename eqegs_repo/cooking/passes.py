"""Streaming passes over a run's raw sensor files, block of frames by block of frames.

A pass takes the run's :class:`~eqegs_repo.io.frames.SensorStack` and uses only what
:class:`~eqegs_repo.io.frames.FrameSource` declares (``read_frames(start, stop, out=)``,
``prefetch``, ``nbytes``, ``shape``, ``dtype``, ``path``), so it reads every raw-data format alike.

Nothing here holds more than a few blocks: the reconstructed (frames, H, W) stack is never built,
nor is a block's canvas: the kernels take each sensor's block as read (the sensor layout is
linear, so per-sensor sums add up to the sums over the combined image).

* :func:`frame_sum_pass` -- the reconstruction alone: the frame-summed canvas image I_Σ and the
  counts per frame;
* :func:`integration_pass` -- per frame, the radial sums of every bin, the forward (direct-beam
  box) counts and, optionally, the frame sum (for a background run);
* :func:`fused_pass` -- both in one read of the run: a probe of evenly spaced blocks is read
  first and kept, the caller builds the integration from the probe's frame sum, then every block
  is integrated and frame-summed (docs/q-integration.md#one-read-per-run).

``workers`` threads ("lanes", :func:`_stream`) each take the next block, read it themselves
(positioned reads into the lane's reused buffers, the blocks ahead announced to the kernel when
the data come from the disk; byte ranges through fsspec for other filesystems) and compute it,
in parallel with the other lanes: file reads and the compiled kernels run without the GIL, and a
block is computed on the core that read it. The resident memory stays at a block per lane (plus
the probe and the tracked pixels' counts in a fused pass). Every block read is checked: negative
counts, and NaN/inf in float data, are a BadSample naming the file, frame and pixel.
"""
import collections
import itertools
import math
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from eqegs_repo.errors import BadInput, BadSample
from eqegs_repo.kernels import q_integration as qi
from eqegs_repo.kernels.reconstruction import FrameSumAccumulator
from eqegs_repo.kernels.sensors import sensor_pixels

BLOCK_BYTES = 16 << 20  # raw bytes read per block, all sensors together (speed: bench_full_chain.py)
BUFFER_SETS = 3  # buffer sets of iter_blocks: a block stays valid while the next two are read
PREFETCH_BLOCKS = 2  # blocks announced to the kernel ahead of the one being read (0: no hints)
PREFETCH_BELOW = 4e9  # bytes/s: hints only while the median of the last 5 block reads is slower
PROBE_BYTES = 64 << 20  # raw bytes of the probe of a fused pass (evenly spaced blocks, kept)
MAX_ALIGNED_BLOCKS = 4  # a block may grow to this many block_bytes to hold a whole chunk
CHECKPOINTS = (1 / 64, 1 / 32, 1 / 16) + tuple(i / 8 for i in range(1, 8))
"""Shares of the frames at which a fused pass hands its frame sum so far to the setup's checkpoint:
often early (a pixel watched late misses more blocks), then every 1/8."""


def frames_per_block(stack, block_bytes=None):
    """Frames per block so that one block of every sensor is at most about ``block_bytes``
    (default :data:`BLOCK_BYTES`), rounded down to an even number (the compiled integration
    takes frames in pairs), at least 1.

    When the sensors' sources are chunked along frames (their optional ``chunk_frames``, e.g.
    compressed HDF5), a block is a whole number of chunks, so that each chunk is read and
    decompressed once: at least one chunk, even when that is larger than ``block_bytes``, unless
    one chunk of every sensor is over :data:`MAX_ALIGNED_BLOCKS` blocks (then blocks are not
    aligned and the format's chunk cache serves the chunks cut by a block's end)."""
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    n_sensors, n_frames, rows, cols = stack.shape
    per_frame = n_sensors * rows * cols * np.dtype(stack.dtype).itemsize
    frames = block_bytes // max(per_frame, 1)
    unit = 2
    for source in getattr(stack, "files", ()):
        unit = math.lcm(unit, max(1, int(getattr(source, "chunk_frames", 1) or 1)))
    if unit > 2 and unit * per_frame <= MAX_ALIGNED_BLOCKS * block_bytes:
        return int(min(n_frames, max(unit, frames - frames % unit)))
    return int(max(1, min(n_frames, frames - frames % 2)))


def check_layout(stack, layout, where):
    """Raise BadInput when the sensor files do not fit the sensor_layout record."""
    n_sensors, _, rows, cols = stack.shape
    if n_sensors != layout.n_sensors or (rows, cols) != tuple(layout.sensor_shape):
        raise BadInput(f"{where}: the raw data hold {n_sensors} sensors of {rows} x {cols} but "
                       f"sensor_layout says n_sensors = {layout.n_sensors}, sensor_shape = "
                       f"{list(layout.sensor_shape)}")


def block_ranges(stack, block_frames=None):
    """``[(start, stop), ...]``: the blocks of a pass over ``stack``, in file order."""
    n_frames = stack.shape[1]
    step = block_frames or frames_per_block(stack)
    return [(start, min(start + step, n_frames)) for start in range(0, n_frames, step)]


def iter_blocks(stack, block_frames=None):
    """Yield ``(start, stop, [block of each sensor])``, blocks of shape (frames, rows, cols), in
    file order, one after the other (the passes below read in parallel lanes instead:
    :func:`_stream`).

    The block arrays come from a ring of :data:`BUFFER_SETS` buffer sets, so memory stays at a
    few blocks whatever the file size: a block may be used until ``BUFFER_SETS - 1`` further
    blocks have been asked for, then its arrays are overwritten. The block
    :data:`PREFETCH_BLOCKS` ahead is announced to the kernel
    (:meth:`~eqegs_repo.io.frames.SensorStack.prefetch`), so that on cold data the disk reads ahead
    while the blocks before are used.
    """
    ranges = block_ranges(stack, block_frames)
    for ahead in ranges[:PREFETCH_BLOCKS]:
        stack.prefetch(*ahead)
    ring = [{} for _ in range(BUFFER_SETS)]
    for index, (start, stop) in enumerate(ranges):
        blocks = _read_block(stack, start, stop, ring[index % BUFFER_SETS])
        if PREFETCH_BLOCKS and index + PREFETCH_BLOCKS < len(ranges):
            stack.prefetch(*ranges[index + PREFETCH_BLOCKS])
        yield start, stop, blocks


def _check_counts(stack, blocks, start):
    """BadSample naming the sensor file, frame and pixel of the first count of ``blocks`` (frames
    ``start``.. of every sensor) that is negative or, for float counts, NaN or infinite. Unsigned
    counts need no check; otherwise a block costs its minimum (and maximum, for floats), a
    fraction of its read."""
    kind = np.dtype(stack.dtype).kind
    if kind == "u":
        return
    for k, block in enumerate(blocks):
        lowest = block.min()
        finite = kind != "f" or bool(np.isfinite(lowest) and np.isfinite(block.max()))
        if finite and lowest >= 0:
            continue
        bad, rule = (block < 0, "counts must be >= 0") if finite else (~np.isfinite(block), "counts must be finite numbers")
        frame, row, col = np.argwhere(bad)[0]
        value = block[frame, row, col]
        raise BadSample(f"{stack.files[k].path}: frame {start + frame}, pixel (row {row}, col {col}) "
                        f"holds {float(value) if kind == 'f' else int(value)}; {rule} "
                        f"({int(bad.sum())} bad values in frames {start}..{start + len(block) - 1})")


def _stream(stack, ranges, workers, work, *, keep=False, ready=None):
    """Call ``work(lane, start, stop, blocks)`` for every block of ``stack`` on ``lanes`` =
    max(1, workers) threads: first the blocks of the list ``ready`` (``(start, stop, blocks)``
    already in memory, taken off the list as they are handed out), then the blocks
    ``(start, stop)`` of ``ranges``, in order.

    Each lane takes the next block (under a lock, which also announces the block
    :data:`PREFETCH_BLOCKS` further on to the kernel while the median speed of the last 5 block
    reads is below :data:`PREFETCH_BELOW`, i.e. the data come from the disk; a hint costs a walk
    of the page cache when they are there already), reads it itself into its own buffer set
    (reused for every block it reads; fresh arrays with ``keep``) and computes it, while the data
    are still in its core's cache; the lanes read and compute in parallel. A lane's calls never
    overlap, so per-lane state needs no lock. The first error of a lane (or of its reading)
    stops the pass and is raised.
    """
    ranges = list(ranges)
    ready = [] if ready is None else ready

    def held():
        while ready:
            yield ready.pop()

    jobs = itertools.chain(held(), ((start, stop, None) for start, stop in ranges))
    for ahead in ranges[:PREFETCH_BLOCKS]:
        stack.prefetch(*ahead)
    lock = threading.Lock()
    handed = [0]  # blocks of ``ranges`` handed out
    speeds = collections.deque([0.0], maxlen=5)  # bytes/s of the last block reads
    failed = threading.Event()

    def lane(index):
        buffers = {}
        while not failed.is_set():
            try:
                with lock:
                    job = next(jobs, None)
                    if job is None or failed.is_set():
                        return
                    if job[2] is None:
                        handed[0] += 1
                        ahead = handed[0] - 1 + PREFETCH_BLOCKS
                        if PREFETCH_BLOCKS and ahead < len(ranges) and statistics.median(speeds) < PREFETCH_BELOW:
                            stack.prefetch(*ranges[ahead])
                start, stop, blocks = job
                if blocks is None:
                    began = time.perf_counter()
                    blocks = _read_block(stack, start, stop, None if keep else buffers)
                    speed = sum(b.nbytes for b in blocks) / max(time.perf_counter() - began, 1e-9)
                    with lock:
                        speeds.append(speed)
                work(index, start, stop, blocks)
            except BaseException:
                failed.set()
                raise

    with ThreadPoolExecutor(_lanes(workers)) as pool:
        for job in [pool.submit(lane, index) for index in range(_lanes(workers))]:
            job.result()


def _reporting(work, progress):
    """``work`` that calls ``progress(n_frames)`` after each block (``progress`` None: ``work``)."""
    if progress is None:
        return work

    def reported(lane, start, stop, blocks):
        work(lane, start, stop, blocks)
        progress(stop - start)

    return reported


def _read_block(stack, start, stop, buffers):
    """Frames ``start..stop-1`` of every sensor file, into ``buffers`` (a dict of reused buffer
    sets by block length, filled as needed) or fresh arrays when ``buffers`` is None."""
    if buffers is None:
        blocks = [f.read_frames(start, stop) for f in stack.files]
    else:
        if stop - start not in buffers:
            buffers[stop - start] = [np.empty((stop - start,) + f.shape[1:], f.dtype) for f in stack.files]
        blocks = [f.read_frames(start, stop, out=b) for f, b in zip(stack.files, buffers[stop - start])]
    _check_counts(stack, blocks, start)
    return blocks


def _lanes(workers):
    return max(1, int(workers))


def frame_sum_pass(stack, layout, block_frames=None, workers=1, progress=None):
    """Frame sums alone: ``(image (H, W) float64, counts per frame (frames,) float64, coverage (H, W))``.
    ``progress``: called with the number of frames of each block done (e.g. a bar's update)."""
    accumulators = [FrameSumAccumulator(layout) for _ in range(_lanes(workers))]
    per_frame = np.zeros(stack.shape[1])

    def work(lane, start, stop, blocks):
        per_frame[start:stop] = accumulators[lane].add(blocks)

    _stream(stack, block_ranges(stack, block_frames), workers, _reporting(work, progress))
    total = _merged(accumulators)
    return total.image, per_frame, total.coverage


@dataclass(frozen=True)
class IntegrationSetup:
    """What an integration pass computes per frame: the sums of ``integrator`` (a built
    :class:`~eqegs_repo.kernels.q_integration.RadialIntegrator`, with the mask ``keep`` (H, W)
    bool), the forward counts in the box of half-width ``forward_halfwidth`` px around
    ``centre`` (x, y px) and, for the canvas pixels ``tracked`` (flat indices, sorted; may be
    empty), each pixel's counts. A one-read pass (:func:`fused_pass`) with a ``checkpoint``
    (``checkpoint(frame sum so far (H, W)) -> canvas pixels``, hottest first, e.g. a
    :class:`~eqegs_repo.cooking.tracking.Watcher`) also records the counts of those pixels from
    then on, at most ``watch_limit`` sensor pixels (the *watched* pixels)."""

    integrator: object
    centre: tuple
    forward_halfwidth: float
    tracked: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    keep: np.ndarray | None = None
    checkpoint: object = None
    watch_limit: int = 0


class _Integrating:
    """The per-block work of an integration pass, into arrays of the whole run."""

    def __init__(self, n_frames, layout, setup, dtype):
        integrator = setup.integrator
        self.setup = setup
        self.parts = integrator.for_sensors(layout)
        self.boxes = qi.sensor_boxes(layout, centre=setup.centre, halfwidth=setup.forward_halfwidth)
        self.binary = integrator.is_binary
        self.sums = np.empty((n_frames, integrator.n_bins))
        self.variance = self.sums if self.binary else np.empty_like(self.sums)
        self.forward = np.empty(n_frames)
        taps = sensor_taps(layout, setup.tracked)
        bounds = np.cumsum([0] + [pixels.size for pixels, _ in taps])
        self.taps = [(pixels, slice(lo, hi)) for (pixels, _), lo, hi in zip(taps, bounds[:-1], bounds[1:])]
        self.tracked_pixels = np.concatenate([canvas for _, canvas in taps])
        self.tracked = np.zeros((n_frames, self.tracked_pixels.size), dtype)
        self.layout = layout
        # watched sensor pixels: counts (watch_limit, frames), zero pages until written; the
        # entries (sensor, pixel, canvas pixel); per block the number of entries it recorded
        self.watched = np.zeros((setup.watch_limit, n_frames), dtype) if setup.watch_limit else None
        self.entries = np.zeros((0, 3), np.int64)
        self.recorded = {}
        self.overflow = False
        self._taps = (0, [])  # (entries, [(sensor, pixels, entry rows)]): replaced whole, read without a lock

    def watch(self, canvas):
        """Record the counts of the canvas pixels ``canvas`` (flat indices, hottest first) from the
        next blocks on, those not tracked or watched yet, within the watch limit (beyond it:
        ``overflow``). Called by one thread at a time."""
        known = np.union1d(self.tracked_pixels, self.entries[:, 2])
        canvas = np.asarray(canvas, np.int64)
        canvas = canvas[~np.isin(canvas, known)]
        rows = tap_rows(sensor_taps(self.layout, canvas))
        order = np.argsort(_rank(canvas, rows[:, 2]), kind="stable")  # hottest first
        room = 0 if self.watched is None else self.watched.shape[0] - len(self.entries)
        if len(rows) > room:
            self.overflow = True
        rows = rows[order][:max(room, 0)]
        if not len(rows):
            return
        self.entries = np.concatenate([self.entries, rows])
        index = np.arange(len(self.entries))
        self._taps = (len(self.entries), [(k, self.entries[self.entries[:, 0] == k, 1], index[self.entries[:, 0] == k])
                                          for k in range(len(self.parts))])

    def __call__(self, start, stop, blocks):
        self.sums[start:stop] = sum(part.integrate(block) for part, block in zip(self.parts, blocks))
        if not self.binary:
            self.variance[start:stop] = sum(part.integrate_variance(block) for part, block in zip(self.parts, blocks))
        self.forward[start:stop] = qi.forward_spectrum_sensors(blocks, boxes=self.boxes)
        for (pixels, columns), block in zip(self.taps, blocks):
            if pixels.size:
                frames = block.reshape(stop - start, -1)
                out = self.tracked[start:stop, columns]
                if frames.dtype == out.dtype:
                    np.take(frames, pixels, axis=1, out=out, mode="clip")
                else:
                    out[...] = frames[:, pixels]
        n_watched, taps = self._taps
        for k, pixels, rows in taps:
            self.watched[rows, start:stop] = blocks[k].reshape(stop - start, -1)[:, pixels].T
        self.recorded[start] = n_watched

    def result(self):
        return {"sums": self.sums, "variance": self.variance, "forward": self.forward,
                "tracked": self.tracked, "tracked_pixels": self.tracked_pixels,
                "watched": self.watched, "watched_entries": self.entries, "recorded": self.recorded,
                "watch_overflow": self.overflow}


def _rank(canvas, pixels):
    """The place of each of ``pixels`` in the list ``canvas`` (every pixel is in it)."""
    order = np.argsort(canvas, kind="stable")
    return order[np.searchsorted(canvas, pixels, sorter=order)]


def sensor_taps(layout, tracked):
    """For canvas pixels ``tracked`` (flat indices): per sensor ``(pixels, canvas)``, the flat
    indices of the sensor's pixels that land on a tracked canvas pixel and those canvas pixels.
    ``block[:, pixels]`` are their counts; a canvas pixel under several sensors (sum mode)
    appears once per sensor, and its counts are the sum of its columns."""
    tracked = np.asarray(tracked, np.int64)
    taps = []
    for k in range(layout.n_sensors):
        canvas = sensor_pixels(layout, k).ravel()
        pixels = np.flatnonzero(np.isin(canvas, tracked))
        taps.append((pixels, canvas[pixels]))
    return taps


def tap_rows(taps):
    """The taps of :func:`sensor_taps` as rows (sensor, sensor pixel, canvas pixel), (n, 3) int64."""
    return np.concatenate([np.stack([np.full(p.size, k), p, c], axis=1) for k, (p, c) in enumerate(taps)]
                          + [np.zeros((0, 3), np.int64)]).astype(np.int64)


def integration_pass(stack, layout, integrator, centre, forward_halfwidth, *, frame_sum=False,
                     workers=1, block_frames=None, tracked=None, progress=None):
    """One run integrated with a built :class:`~eqegs_repo.kernels.q_integration.RadialIntegrator`.

    Each sensor's block is integrated as read (:meth:`RadialIntegrator.for_sensors`). Returns a
    dict: ``sums`` (frames, bins) float64, ``variance`` (frames, bins) (Poisson: equal to the
    sums for an unsplit matrix), ``forward`` (frames,) counts in the box of half-width
    ``forward_halfwidth`` px around ``centre`` (x, y), ``image`` (H, W) the frame sum when
    ``frame_sum`` is true, and, when canvas pixels ``tracked`` (flat indices) are given, their
    counts frame by frame: ``tracked`` (frames, columns) in the counts' dtype, one column per
    sensor pixel landing on a tracked pixel, and ``tracked_pixels`` (columns,) the canvas pixel
    of each column (:func:`sensor_taps`). ``progress``: as for :func:`frame_sum_pass`.
    """
    setup = IntegrationSetup(integrator, centre, forward_halfwidth,
                             *(() if tracked is None else (np.asarray(tracked, np.int64),)))
    integrating = _Integrating(stack.shape[1], layout, setup, stack.dtype)
    accumulators = [FrameSumAccumulator(layout) if frame_sum else None for _ in range(_lanes(workers))]

    def work(lane, start, stop, blocks):
        integrating(start, stop, blocks)
        if frame_sum:
            accumulators[lane].add(blocks)

    _stream(stack, block_ranges(stack, block_frames), workers, _reporting(work, progress))
    out = integrating.result()
    if tracked is None:
        del out["tracked"], out["tracked_pixels"]
    out["image"] = _merged(accumulators).image if frame_sum else None
    return out


def probe_ranges(ranges, frame_bytes, probe_bytes=None):
    """The blocks of a fused pass's probe: about ``probe_bytes`` (default :data:`PROBE_BYTES`)
    of raw data in blocks evenly spaced over the run (first and last included), at least one;
    every block when the run is no larger."""
    probe_bytes = PROBE_BYTES if probe_bytes is None else probe_bytes
    block_bytes = max(1, (ranges[0][1] - ranges[0][0]) * frame_bytes)
    n = int(min(len(ranges), max(1, probe_bytes // block_bytes)))
    picked = np.unique(np.round(np.linspace(0, len(ranges) - 1, n)).astype(int))
    return [ranges[i] for i in picked]


def fused_pass(stack, layout, plan, *, workers=1, block_frames=None, probe_bytes=None, progress=None):
    """Reconstruction and integration of one run in one read of its files.

    1. The probe (:func:`probe_ranges`) is read, frame-summed and kept in memory.
    2. ``plan(probe_image, probe_frames)`` gets the probe's frame sum (H, W) float64 and its
       number of frames, and returns an :class:`IntegrationSetup`, or None when the probe
       cannot tell how to integrate (then the pass only sums frames).
    3. The probe blocks are integrated, then every other block is read, frame-summed and
       integrated.

    Returns a dict: ``image``, ``per_frame``, ``coverage`` as :func:`frame_sum_pass`;
    ``probe_frames`` (int); ``setup`` (the plan's answer); with a setup also ``sums``,
    ``variance``, ``forward``, ``tracked`` and ``tracked_pixels`` as :func:`integration_pass`
    with the setup's tracked canvas pixels. ``progress``: as for :func:`frame_sum_pass` (each
    frame counts once, when it is read).
    """
    n_frames = stack.shape[1]
    ranges = block_ranges(stack, block_frames)
    frame_bytes = stack.nbytes // max(n_frames, 1)
    probe = probe_ranges(ranges, frame_bytes, probe_bytes)
    accumulators = [FrameSumAccumulator(layout) for _ in range(_lanes(workers))]
    per_frame = np.zeros(n_frames)
    held = []

    def sum_probe(lane, start, stop, blocks):
        per_frame[start:stop] = accumulators[lane].add(blocks)
        held.append((start, stop, blocks))

    _stream(stack, probe, workers, _reporting(sum_probe, progress), keep=True)
    probe_sum = FrameSumAccumulator(layout)
    for accumulator in accumulators:
        probe_sum.merge(accumulator)
    probe_frames = sum(stop - start for start, stop in probe)
    setup = plan(probe_sum.image, probe_frames)
    del probe_sum
    integrating = None if setup is None else _Integrating(n_frames, layout, setup, stack.dtype)
    if integrating is None:
        held.clear()  # already summed; nothing more to do with them
    summed = {start for start, _ in probe}
    checkpoints = _Checkpoints(integrating, accumulators, n_frames, probe_frames)

    def work(lane, start, stop, blocks):
        if start not in summed:
            per_frame[start:stop] = accumulators[lane].add(blocks)
        if integrating is not None:
            integrating(start, stop, blocks)
            if start not in summed:
                checkpoints.passed(stop - start)
        if progress is not None and start not in summed:
            progress(stop - start)

    _stream(stack, [r for r in ranges if r[0] not in summed], workers, work, ready=held)
    total = _merged(accumulators)
    out = {"image": total.image, "per_frame": per_frame, "coverage": total.coverage,
           "probe_frames": probe_frames, "setup": setup, "ranges": ranges}
    if integrating is not None:
        out.update(integrating.result())
    return out


class _Checkpoints:
    """At the :data:`CHECKPOINTS` of a one-read pass's frames, the frame sum so far goes to the
    setup's ``checkpoint``, and the pixels it names are watched (:meth:`_Integrating.watch`)."""

    def __init__(self, integrating, accumulators, n_frames, done):
        setup = None if integrating is None else integrating.setup
        self.active = setup is not None and setup.checkpoint is not None and setup.watch_limit > 0
        self.integrating, self.accumulators = integrating, accumulators
        self.marks = sorted({int(n_frames * share) for share in CHECKPOINTS})
        self.done = done
        self.lock = threading.Lock()
        self.busy = threading.Lock()

    def passed(self, frames):
        """Count ``frames`` more frames summed; run a checkpoint when one is due (one lane at a time;
        a lane that finds another at it goes on)."""
        if not self.active:
            return
        with self.lock:
            self.done += frames
            due = bool(self.marks) and self.done >= self.marks[0]
            while self.marks and self.done >= self.marks[0]:
                self.marks.pop(0)
        if due and self.busy.acquire(blocking=False):
            try:
                # the other lanes go on adding: a frame sum between two blocks is as good a guess
                partial = sum(image for image in (a.image for a in self.accumulators) if image is not None)
                self.integrating.watch(self.integrating.setup.checkpoint(partial))
            finally:
                self.busy.release()


def gather_pass(stack, ranges, columns, out, *, workers=1, progress=None):
    """Read the blocks ``ranges`` (``[(start, stop), ...]``) of ``stack`` and copy the counts of the
    sensor pixels ``columns`` ((n, 3) rows of :func:`tap_rows`: sensor, sensor pixel, canvas
    pixel) into ``out[start:stop]`` ((frames, n), e.g. int64); nothing else is computed.
    ``progress``: as for :func:`frame_sum_pass`."""
    by_sensor = [(k, columns[columns[:, 0] == k, 1], np.flatnonzero(columns[:, 0] == k))
                 for k in range(stack.shape[0])]

    def gather(lane, start, stop, blocks):
        for k, pixels, where in by_sensor:
            if where.size:
                out[start:stop, where] = blocks[k].reshape(stop - start, -1)[:, pixels]

    _stream(stack, ranges, workers, _reporting(gather, progress))


def _merged(accumulators):
    """The lanes' :class:`FrameSumAccumulator` s added into the first one."""
    for other in accumulators[1:]:
        accumulators[0].merge(other)
    return accumulators[0]
