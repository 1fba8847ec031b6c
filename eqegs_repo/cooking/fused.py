"""Reconstruction and q integration of a sample in one read of its raw files.

Used by :class:`~eqegs_repo.cooking.cook.Cooker` when q integration is cooked and the
reconstruction is not cached (docs/q-integration.md#one-read-per-run):

1. A probe of evenly spaced blocks (:data:`~eqegs_repo.cooking.passes.PROBE_BYTES` of raw data)
   is read and kept. Its frame sum gives the ROI and the beam centre c₀ (or the centre of a
   cached background integration within :data:`CENTRE_TOLERANCE_PX` of it), the mask without hot
   pixels and a hot-pixel score of every pixel.
2. Every block is frame-summed and integrated around c₀ with that mask, leaving out the
   *tracked* pixels: the pixels hot in the probe and the :data:`TRACKED_FRACTION` of the used
   pixels that look hottest. The counts of the tracked pixels are kept frame by frame.
3. The whole run's frame sum gives the reconstruction dataset (identical to a separate pass),
   the centre c of the whole run and the hot pixels of the whole run. The integration is
   accepted when |c − c₀| ≤ :data:`CENTRE_TOLERANCE_PX` and every hot pixel of the whole run is
   a tracked pixel: the tracked pixels that are not hot are added to their bins, so the sums are
   exactly those of a separate integration around c₀ with the whole run's mask. Otherwise the
   sample is read a second time (:meth:`Cooker.integrate_separately`).
"""
import numpy as np

from eqegs_repo.cooking import passes
from eqegs_repo.cooking.background import CENTRE_TOLERANCE_PX
from eqegs_repo.errors import BadInput
from eqegs_repo.steps import q_integration as qi
from eqegs_repo.steps.reconstruction import Roi
from eqegs_repo.steps.sensors import coverage as layout_coverage

TRACKED_FRACTION = 0.005
"""Share of the used pixels whose counts are kept frame by frame (the hottest-looking in the
probe), besides the probe's hot pixels: 0.5 % is ~1400 pixels, ~45 MB for 4092 frames."""


def cook_q_integration(cooker, workers=1):
    """The q-integration dataset of ``cooker``'s sample (a
    :class:`~eqegs_repo.cooking.cook.Cooker`), read with ``workers`` lanes; stores its
    reconstruction dataset too."""
    layout = cooker.checked_layout()
    shared = cooker.shared_background()
    coverage = layout_coverage(layout)
    planned = {}

    def plan(probe_image, probe_frames):
        try:
            return _plan(cooker, probe_image, coverage, shared, planned)
        except BadInput as exc:
            planned["reason"] = f"the probe ({probe_frames} frames) gave no integration: {exc}"
            return None

    run = passes.fused_pass(cooker.run.stack, layout, plan, workers=workers)
    rec = cooker.store("reconstruction", cooker.reconstruction_dataset(
        run["image"], run["per_frame"], run["coverage"], layout))
    image = run["image"]
    centre = cooker.centre(image, Roi(*rec.attrs["roi"]))
    info = {"path": "fused", "sample_reads": 1, "reason": None, "probe_frames": run["probe_frames"],
            "tracked_pixels": 0 if run["setup"] is None else len(run["setup"].tracked)}
    reason = planned.get("reason") or _refused(cooker, run, centre, planned)
    if reason is not None:
        info.update(path="separate", sample_reads=2, reason=reason)
        return cooker.integrate_separately(rec, info)
    xy, keep = run["setup"].centre, planned["final_keep"]
    integrator = cooker.integrator(image.shape, xy, keep)
    sample = _add_back(run, integrator, keep)
    return cooker.q_integration_dataset(sample, integrator, centre, xy, keep, image, info, shared)


def _plan(cooker, probe_image, coverage, shared, planned):
    """The :class:`~eqegs_repo.cooking.passes.IntegrationSetup` of the probe's frame sum."""
    roi, _ = cooker.roi(probe_image)
    xy = cooker.integration_centre(cooker.centre(probe_image, roi), shared)
    base = cooker.mask(probe_image, coverage, xy, hot=False)
    tracked = np.zeros(0, np.int64)
    n_mad = cooker.params["q_integration"]["hot_pixel_mad"]
    if n_mad is not None:
        valid = qi.coverage_keep(coverage) & qi.direct_beam_keep(
            probe_image.shape, xy, cooker.params["q_integration"]["direct_exclusion_halfwidth"])
        score = qi.hot_pixel_score(probe_image, centre=xy, valid=valid).ravel()
        candidates = np.flatnonzero(base.ravel())
        order = np.argsort(-score[candidates], kind="stable")
        n_hot = int(np.count_nonzero(score[candidates] > float(n_mad)))
        n = min(candidates.size, max(n_hot, int(np.ceil(TRACKED_FRACTION * candidates.size))))
        tracked = np.sort(candidates[order[:n]])
    integrated = base.copy()
    integrated.ravel()[tracked] = False
    planned.update(base=base, tracked=tracked)
    integrator = cooker.integrator(probe_image.shape, xy, integrated, weights=False)
    return passes.IntegrationSetup(integrator, xy, cooker.params["q_integration"]["forward_box_halfwidth"], tracked)


def _refused(cooker, run, centre, planned):
    """Why the fused integration cannot stand for the whole run (a sentence), or None. Sets
    ``planned["final_keep"]``, the whole run's mask around the probe's centre."""
    setup = run["setup"]
    xy = setup.centre
    shift = float(np.hypot(centre.x - xy[0], centre.y - xy[1]))
    if centre.method != "manual" and shift > CENTRE_TOLERANCE_PX:
        return (f"the centre of the whole run ({centre.x:.4f}, {centre.y:.4f}) px is {shift:.4f} px from "
                f"the centre integrated around ({xy[0]:.4f}, {xy[1]:.4f}); more than {CENTRE_TOLERANCE_PX} px")
    keep = cooker.mask(run["image"], run["coverage"], xy)
    hot = planned["base"] & ~keep
    untracked = np.setdiff1d(np.flatnonzero(hot.ravel()), setup.tracked)
    if untracked.size:
        return (f"{untracked.size} hot pixel(s) of the whole run were not hot-looking in the probe "
                f"(e.g. flat index {int(untracked[0])})")
    planned["final_keep"] = keep
    return None


def _add_back(run, integrator, keep):
    """The fused pass's sums with the tracked pixels that the whole run's mask keeps added to
    their bins by ``integrator`` (built with that mask): ``{"sums", "variance", "forward"}``."""
    tracked = run["setup"].tracked
    kept = np.flatnonzero(keep.ravel()[tracked])
    sums = run["sums"]
    variance = run["variance"]
    if kept.size:
        values = run["tracked"][:, kept]
        columns = integrator.matrix[:, tracked[kept]]
        sums += (columns @ values.T).T
        if variance is not sums:
            variance += (columns.multiply(columns) @ values.T).T
    return {"sums": sums, "variance": variance, "forward": run["forward"]}
