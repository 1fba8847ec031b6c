"""Reconstruction and q integration of a sample in one read of its raw files.

Used by :class:`~eqegs_repo.cooking.cook.Cooker` when q integration is cooked and the
reconstruction is not cached (docs/q-integration.md#one-read-per-run):

1. A probe of evenly spaced blocks (:data:`~eqegs_repo.cooking.passes.PROBE_BYTES` of raw data)
   is read and kept. Its frame sum gives the ROI, a provisional beam centre c₀ and the tracked
   pixels (:func:`eqegs_repo.cooking.tracking.plan`).
2. Every block is frame-summed and integrated around c₀, the tracked pixels' counts kept.
3. The whole run's frame sum gives the reconstruction dataset (the same as a pass of its own),
   the run's centre c and its mask, exactly as a separate integration finds them. The pass is
   resolved to c and that mask (:func:`eqegs_repo.cooking.tracking.resolve`): the sums equal
   those of a separate integration. When it cannot be (c more than
   :data:`~eqegs_repo.cooking.tracking.MARGIN_PX` from c₀, a hot pixel the probe did not
   track, ``bbox`` pixel splitting, or no centre in the probe), the sample is read a second
   time (:meth:`Cooker.integrate_separately`), and ``attrs["passes"]["reason"]`` says why.
"""
from eqegs_repo.cooking import passes, tracking
from eqegs_repo.errors import BadInput
from eqegs_repo.steps.reconstruction import Roi
from eqegs_repo.steps.sensors import coverage as layout_coverage


def cook_q_integration(cooker, workers=1):
    """The q-integration dataset of ``cooker``'s sample (a
    :class:`~eqegs_repo.cooking.cook.Cooker`), read with ``workers`` lanes; stores its
    reconstruction dataset too."""
    layout = cooker.checked_layout()
    shared = cooker.shared_background()
    coverage = layout_coverage(layout)
    refused = []

    def plan(probe_image, probe_frames):
        if cooker.params["q_integration"]["pixel_splitting"] != "none":
            refused.append("bbox pixel splitting: the pixels' weights move with the centre")
            return None
        try:
            probe_centre = cooker.centre(probe_image, cooker.roi(probe_image)[0])
            return tracking.plan(cooker, probe_image, coverage, (probe_centre.x, probe_centre.y))
        except BadInput as exc:
            refused.append(f"the probe ({probe_frames} frames) gave no integration: {exc}")
            return None

    with cooker.bar("reconstruction + q integration") as bar:
        run = passes.fused_pass(cooker.run.stack, layout, plan, workers=workers, progress=bar.update)
    rec = cooker.store("reconstruction", cooker.reconstruction_dataset(
        run["image"], run["per_frame"], run["coverage"], layout))
    setup = run["setup"]
    info = {"path": "fused", "sample_reads": 1, "reason": None, "probe_frames": run["probe_frames"],
            "probe_centre": None if setup is None else list(setup.centre),
            "tracked_pixels": 0 if setup is None else int(setup.tracked.size)}
    resolved = None
    if setup is not None:
        image = run["image"]
        centre = cooker.centre(image, Roi(*rec.attrs["roi"]))
        xy = (centre.x, centre.y)
        dead = cooker.dead_pixels(image, run["coverage"], xy)
        keep = cooker.mask(image, run["coverage"], xy, dead)
        integrator = cooker.integrator(image.shape, xy, keep)
        resolved, reason = tracking.resolve(run, setup, integrator, keep, xy)
        refused.append(reason)
    if resolved is None:
        del run
        info.update(path="separate", sample_reads=2, reason=refused[0])
        return cooker.integrate_separately(rec, info)
    return cooker.q_integration_dataset(resolved, integrator, centre, keep, dead, image, run["coverage"], info,
                                        shared)
