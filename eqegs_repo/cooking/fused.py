"""Reconstruction and q integration of a sample in one read of its raw files.

Used by :class:`~eqegs_repo.cooking.cook.Cooker` when q integration is cooked and the
reconstruction is not cached (docs/q-integration.md#one-read-per-run):

1. A probe of evenly spaced blocks (:data:`~eqegs_repo.cooking.passes.PROBE_BYTES` of raw data)
   is read and kept. Its frame sum gives the ROI, a provisional beam centre c₀ and the tracked
   pixels (:func:`eqegs_repo.cooking.tracking.plan`).
2. Every block is frame-summed and integrated around c₀, the tracked pixels' counts kept; at the
   checkpoints the pixels that look hot so far are watched (their counts kept from then on).
3. The whole run's frame sum gives the reconstruction dataset (the same as a pass of its own),
   the run's centre c and its mask, exactly as a separate integration finds them. The pass is
   resolved to c and that mask (:func:`eqegs_repo.cooking.tracking.resolve`): pixels the mask
   drops that the pass summed are subtracted with their counts in every frame
   (:func:`pixel_series`: watched, or read again from the blocks before they were watched), and
   the sums equal those of a separate integration. When it cannot be (c more than
   :data:`~eqegs_repo.cooking.tracking.MARGIN_PX` from c₀, ``bbox`` pixel splitting, no centre
   in the probe, or a pixel to subtract from float counts), the sample is read a second time
   (:meth:`Cooker.integrate_separately`), and ``attrs["passes"]["reason"]`` says why.

:func:`read_run` is steps 1 and 2, :func:`resolve` step 3; both integrate by an
:class:`~eqegs_repo.cooking.recipe.IntegrationRecipe`. The Cooker builds the
reconstruction dataset between them (:meth:`Cooker.integrate_fused`).
"""
import contextlib

import numpy as np

from eqegs_repo.cooking import passes, tracking
from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.sensors import coverage as layout_coverage


def read_run(stack, layout, recipe, *, coverage=None, workers=1, progress=None):
    """One read of a run's sensor ``stack`` with its sensor ``layout``: the frame sum, and the
    integration tracked around the probe's centre by ``recipe`` (steps 1 and 2 above), read with
    ``workers`` lanes; ``progress(n_frames)`` is called as frames are read. ``coverage`` (H, W):
    the sensors' coverage of the canvas when ``layout`` is not the sensors' own (an already
    reconstructed stack read with one canvas-wide "sensor"); default that of ``layout``.

    Returns ``(run, refused)``: ``run`` the dict of
    :func:`~eqegs_repo.cooking.passes.fused_pass` (``setup`` None when the probe gave no
    integration), ``refused`` a list of the reasons why not (empty when it did)."""
    coverage = layout_coverage(layout) if coverage is None else coverage
    refused = []

    def plan(probe_image, probe_frames):
        if recipe.values["pixel_splitting"] != "none":
            refused.append("bbox pixel splitting: the pixels' weights move with the centre")
            return None
        try:
            probe_centre = recipe.centre(probe_image, recipe.roi(probe_image)[0])
            return tracking.plan(recipe, probe_image, coverage, (probe_centre.x, probe_centre.y),
                                 watch_frames=stack.shape[1], dtype=stack.dtype)
        except BadInput as exc:
            refused.append(f"the probe ({probe_frames} frames) gave no integration: {exc}")
            return None

    run = passes.fused_pass(stack, layout, plan, workers=workers, progress=progress)
    run["coverage"] = coverage
    return run, refused


def resolve(run, refused, recipe, roi, stack, layout, *, workers=1, bar=None):
    """Step 3: the run's final integration and its sums, from ``(run, refused)`` of
    :func:`read_run` and the ``roi`` of the run's reconstruction. Pixels the pass summed but the
    run's mask drops (hot pixels the probe did not track) are subtracted with their counts in
    every frame: watched ones as recorded, the rest read again from the blocks of ``stack``
    (with ``layout``) that lack them, those blocks only (``bar(frames)``: the progress bar of
    that read, a context manager with ``update``).

    Returns ``(integration, sums, info)``: the
    :class:`~eqegs_repo.cooking.recipe.Integration` of the run's frame sum (None without a
    tracked integration), the dict of ``sums``, ``variance``, ``forward`` resolved to it (None
    when the pass cannot be resolved: the sample must be read again) and the
    ``attrs["passes"]`` record (``path``, ``sample_reads``, ``reason``, probe frames and centre,
    tracked, watched and removed pixels, frames read again and why)."""
    setup = run["setup"]
    info = {"path": "fused", "sample_reads": 1, "reason": None, "probe_frames": run["probe_frames"],
            "probe_centre": None if setup is None else list(setup.centre),
            "tracked_pixels": 0 if setup is None else int(setup.tracked.size),
            "watched_pixels": 0 if setup is None else int(len(run["watched_entries"])),
            "removed_pixels": 0, "reread_frames": 0, "reread_reason": None}
    integration = resolved = None
    if setup is not None:
        integration = recipe.final(run["image"], run["coverage"], roi)
        removed = None
        pixels = tracking.removed_pixels(run, setup, integration.keep)
        if pixels.size and tracking.within_margin(setup, integration.xy) and np.dtype(stack.dtype).kind in "iu":
            with bar(stack.shape[1]) if bar is not None else contextlib.nullcontext() as reading:
                canvas, counts, reread = pixel_series(stack, layout, run, pixels, workers=workers,
                                                      progress=None if reading is None else reading.update)
            removed = (canvas, counts)
            n_frames = stack.shape[1]
            info.update(removed_pixels=int(pixels.size), reread_frames=int(reread),
                        sample_reads=round(1 + reread / max(n_frames, 1), 4) if reread < n_frames else 2)
            if reread:
                unwatched = int(np.count_nonzero(~np.isin(pixels, run["watched_entries"][:, 2])))
                info["reread_reason"] = (
                    f"{pixels.size} pixel(s) the run's mask drops were summed ({unwatched} never watched"
                    f"{', the watch limit was reached' if run['watch_overflow'] else ''}): their counts "
                    f"in {reread} of {n_frames} frames read again")
        resolved, reason = tracking.resolve(run, setup, integration.integrator, integration.keep, integration.xy,
                                            removed)
        refused.append(reason)
    if resolved is None:
        info.update(path="separate", sample_reads=2 + info["reread_frames"] / max(stack.shape[1], 1),
                    reason=refused[0])
    return integration, resolved, info


def pixel_series(stack, layout, run, pixels, *, workers=1, progress=None):
    """The counts of canvas ``pixels`` (flat indices) in every frame of a one-read pass's run
    (``run``: the dict of :func:`~eqegs_repo.cooking.passes.fused_pass` over ``stack`` with
    ``layout``): the watched counts where the pass recorded them, and the blocks it had read
    before a pixel was watched (or every block, for a pixel never watched) read again, those
    blocks only (:func:`~eqegs_repo.cooking.passes.gather_pass`).

    Returns ``(canvas, counts, frames_read)``: ``canvas`` (columns,) the canvas pixel of each
    column (one per sensor pixel landing on it), ``counts`` (frames, columns) int64 and the
    number of frames read again."""
    columns = passes.tap_rows(passes.sensor_taps(layout, pixels))
    counts = np.zeros((stack.shape[1], len(columns)), np.int64)
    entries = {(int(k), int(p)): row for row, (k, p, _) in enumerate(run["watched_entries"])}
    missing = set()
    for column, (k, p, _) in enumerate(columns):
        row = entries.get((int(k), int(p)))
        if row is None:
            missing.update(run["ranges"])
            continue
        counts[:, column] = run["watched"][row]
        missing.update(r for r in run["ranges"] if run["recorded"][r[0]] <= row)
    ranges = sorted(missing)
    if ranges:
        passes.gather_pass(stack, ranges, columns, counts, workers=workers, progress=progress)
    return columns[:, 2], counts, sum(stop - start for start, stop in ranges)
