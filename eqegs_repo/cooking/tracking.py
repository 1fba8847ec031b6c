"""Integrations that can be moved exactly to a nearby centre and mask (docs/q-integration.md#one-read-per-run).

An integration pass needs its centre and mask before it reads a block, but the centre and the
hot pixels of a run are only known from the frame sum of the whole run. A *tracked* pass
integrates around a provisional centre c₀ and leaves out the pixels whose place could change:

* the pixels whose radial bin, direct-beam box, forward box or sector side could change if the
  centre moved by up to :data:`MARGIN_PX` (:func:`~eqegs_repo.kernels.q_integration.centre_sensitive`;
  about 2 % of the pixels for 1 px bins);
* the :data:`TRACKED_FRACTION` of the pixels that look hottest in the frame sum at hand (all of
  its hot pixels among them), and its dead pixels.

Their counts are kept frame by frame (the *tracked* pixels). :func:`resolve` then gives the sums
of the integration around any centre c within :data:`MARGIN_PX` of c₀ with any mask that agrees
with the pass's mask outside the tracked pixels: the untracked pixels are checked to fall in the
same bins (the two matrices are compared), and the tracked ones are added to their bins of the
final matrix. Pixels that read 0 in every frame (dead pixels, which the final mask drops) add
nothing to any sum, so the masks may differ there. The result equals the integration computed
around c with that mask from the start (to the last bit for integer counts, whose float64 sums
are exact).

A one-read pass also *watches* pixels (:class:`Watcher`): at 1/64, 1/32 and 1/16 of the run and
every 1/8 after (:data:`~eqegs_repo.cooking.passes.CHECKPOINTS`) the frame sum so far is scored as
the hot-pixel rule scores the whole run, and the pixels that look hot are recorded frame by frame
from then on (they stay in the sums). A pixel that the final mask drops but the pass summed is
subtracted from its bin with its counts in every frame (:func:`resolve` with ``removed``): the
recorded ones, and for the blocks read before it was watched, counts read again from those
blocks only (:func:`~eqegs_repo.cooking.fused.pixel_series`). Integer counts are summed exactly
in float64, so the subtraction is exact too.
"""
import numpy as np

from eqegs_repo.cooking import passes
from eqegs_repo.kernels import q_integration as qi

MARGIN_PX = 0.01
"""Largest shift (px) between the centre a tracked pass integrated around and the centre it can
be resolved to: the tolerance on the probe's centre, and the reach of a shared background."""
TRACKED_FRACTION = 0.005
"""Share of the used pixels whose counts are kept besides the centre-sensitive ones: the
hottest-looking (0.5 % of 280,000 pixels, about 22 MB of uint32 for 4092 frames)."""
WATCH_BYTES = 64 << 20
"""Memory bound of the watched pixels' counts (frames x pixels in the counts' dtype: 4096 pixels
of 4092 uint32 frames); hot-looking pixels beyond it are not watched."""
WATCH_FRACTION = 0.7
"""A pixel is watched when it scores above this share of ``hot_pixel_mad`` at a checkpoint."""


def plan(recipe, image, coverage, xy, *, watch_frames=None, dtype=None):
    """The :class:`~eqegs_repo.cooking.passes.IntegrationSetup` of a tracked pass around ``xy``
    (x, y px), from the frame sum ``image`` (H, W) at hand (a probe or a whole run) and the
    sensors' ``coverage`` (H, W), by ``recipe`` (an
    :class:`~eqegs_repo.cooking.recipe.IntegrationRecipe`: the mask, bins and integrator).
    With ``watch_frames`` (the run's frames) and integer counts of ``dtype``, the pass also
    watches the pixels that look hot at its checkpoints (a :class:`Watcher` within
    :data:`WATCH_BYTES`)."""
    qp = recipe.values
    shape = image.shape
    covered = qi.coverage_keep(coverage)
    base = recipe.mask(image, coverage, xy)
    margin = MARGIN_PX if qp["pixel_splitting"] == "none" else 0.0  # bbox weights move with the centre
    sensitive = qi.centre_sensitive(
        shape, centre=xy, margin=margin, radial_edges=recipe.bins(shape, xy).edges_px,
        box_halfwidths=(qp["direct_exclusion_halfwidth"], qp["forward_box_halfwidth"]),
        sectors=qp["sectors"] if qp["angle_mode"] == "specify" else ()) if margin else np.zeros(shape, bool)
    tracked = sensitive & covered
    tracked |= recipe.dead_pixels(image, coverage, xy) & base  # dropped by the mask of this frame sum
    if qp["hot_pixel_mad"] is not None:
        valid = covered & qi.direct_beam_keep(shape, centre=xy, halfwidth=qp["direct_exclusion_halfwidth"])
        level = np.zeros(shape)
        level[valid] = qi.ring_level(image, centre=xy, valid=valid)
        excess = qi.ring_excess(image, centre=xy, valid=valid, level=level).ravel()  # finite, ranks
        score = excess / max(float(np.median(np.abs(excess[valid.ravel()]))), np.finfo(np.float64).tiny)
        candidates = np.flatnonzero(base.ravel())
        n_hot = int(np.count_nonzero(score[candidates] > float(qp["hot_pixel_mad"])))  # qi.hot_pixel_score
        # twice the hot ones: a pixel at the threshold stays tracked whatever the rounding
        n = min(candidates.size, max(2 * n_hot, int(np.ceil(TRACKED_FRACTION * candidates.size))))
        hottest = candidates[np.argsort(-excess[candidates], kind="stable")[:n]]
        tracked.ravel()[hottest] = True
    keep = base & ~tracked
    integrator = recipe.integrator(shape, xy, keep, weights=False)
    watcher, limit = None, 0
    if watch_frames and qp["hot_pixel_mad"] is not None and np.dtype(dtype).kind in "iu":
        limit = int(WATCH_BYTES // (int(watch_frames) * np.dtype(dtype).itemsize))
        watcher = Watcher(image, level, valid, keep, WATCH_FRACTION * float(qp["hot_pixel_mad"])) if limit else None
    return passes.IntegrationSetup(integrator, tuple(float(c) for c in xy), qp["forward_box_halfwidth"],
                                   np.flatnonzero(tracked.ravel()), keep, checkpoint=watcher,
                                   watch_limit=limit if watcher is not None else 0)


class Watcher:
    """The hot-looking pixels of a frame sum taken part-way through a run: the pixels of ``keep``
    (H, W) bool (those the pass sums) whose ring excess, in MADs as :func:`hot_pixel_keep
    <eqegs_repo.kernels.q_integration.hot_pixel_keep>` measures it, exceeds ``n_mad``. The ring
    levels ``level`` (H, W) counts are those of the probe's frame sum ``image`` (H, W) over the
    ``valid`` pixels (:func:`~eqegs_repo.kernels.q_integration.ring_level`), scaled to the counts
    so far (a ring median per checkpoint would cost a sort of the whole image)."""

    def __init__(self, image, level, valid, keep, n_mad):
        self.valid = valid
        self.level = level
        self.total = float(np.asarray(image)[valid].sum())
        self.summed = keep[valid]
        self.pixels = np.flatnonzero(valid.ravel())
        self.n_mad = float(n_mad)

    def __call__(self, partial):
        """Canvas pixels (flat indices) that look hot in the frame sum so far ``partial`` (H, W),
        hottest first."""
        total = float(np.asarray(partial)[self.valid].sum())
        if not (total > 0 and self.total > 0):
            return np.zeros(0, np.int64)
        level = self.level[self.valid] * (total / self.total)
        z = (np.asarray(partial, np.float64)[self.valid] - level) / np.sqrt(np.maximum(level, 1.0))
        centre = float(np.median(z))
        mad = float(np.median(np.abs(z - centre)))
        hot = np.flatnonzero((z > centre + self.n_mad * mad) & self.summed)
        return self.pixels[hot[np.argsort(-z[hot], kind="stable")]]


def within_margin(setup, xy):
    """Whether ``xy`` (x, y px) lies within :data:`MARGIN_PX` of the centre ``setup`` integrated around."""
    return float(np.hypot(xy[0] - setup.centre[0], xy[1] - setup.centre[1])) <= MARGIN_PX


def removed_pixels(run, setup, keep):
    """Canvas pixels (flat indices, sorted) that the pass summed (untracked, in ``setup.keep``)
    but the mask ``keep`` (H, W) drops, leaving out those that read 0 in every frame: the pixels
    whose counts :func:`resolve` must subtract."""
    is_tracked = np.zeros(keep.size, bool)
    is_tracked[setup.tracked] = True
    zero = np.asarray(run["image"]).ravel() == 0
    return np.flatnonzero(setup.keep.ravel() & ~keep.ravel() & ~is_tracked & ~zero)


def resolve(run, setup, integrator, keep, xy, removed=None):
    """The sums of ``run`` (a tracked pass with ``setup``: ``sums``, ``variance``, ``forward``,
    ``tracked``, ``tracked_pixels`` and its frame sum ``image``) as if integrated around ``xy`` with ``integrator`` (built
    around ``xy`` with the mask ``keep``) and the same forward box.

    ``removed``: ``(pixels, counts)``, the :func:`removed_pixels` as canvas pixels (columns,)
    and their counts in every frame (frames, columns) integers (a pixel under several sensors
    once per sensor): subtracted from the bins the pass summed them into.

    Returns ``(dict of sums, variance, forward, None)`` or ``(None, reason)`` when the pass cannot
    give them: the centre moved more than the margin, the masks differ outside the tracked
    pixels (and ``removed`` does not hold the difference), or an untracked pixel changed bin or box.
    """
    shift = float(np.hypot(xy[0] - setup.centre[0], xy[1] - setup.centre[1]))
    if shift > MARGIN_PX:
        return None, (f"the centre ({xy[0]:.4f}, {xy[1]:.4f}) px is {shift:.4f} px from the centre "
                      f"integrated around ({setup.centre[0]:.4f}, {setup.centre[1]:.4f}); more than {MARGIN_PX} px")
    is_tracked = np.zeros(keep.size, bool)
    is_tracked[setup.tracked] = True
    is_tracked = is_tracked.reshape(keep.shape)
    # a pixel that read 0 in every frame (a dead one, say) adds nothing to any sum: the masks may
    # differ there
    zero = np.asarray(run["image"]) == 0
    sums, variance = run["sums"], run["variance"]
    if removed is not None and len(removed[0]):
        pixels, counts = removed
        drop = np.zeros(keep.size, bool)
        drop[pixels] = True
        if (drop & keep.ravel()).any() or not setup.keep.ravel()[pixels].all():
            raise ValueError("removed pixels must be pixels the pass summed and the mask drops")
        summed = setup.integrator.matrix[:, pixels].astype(np.float64)
        counts = np.asarray(counts, np.float64).T
        sums = sums - (summed @ counts).T  # integers: exact
        variance = sums if variance is run["sums"] else variance - (summed.multiply(summed) @ counts).T
        setup = passes.IntegrationSetup(setup.integrator, setup.centre, setup.forward_halfwidth, setup.tracked,
                                        setup.keep & ~drop.reshape(keep.shape))
    differ = int(np.count_nonzero((setup.keep != (keep & ~is_tracked)) & ~zero))
    if differ:
        return None, f"the masks differ on {differ} untracked pixel(s) (hot pixels the probe did not track)"
    untracked = np.flatnonzero((setup.keep & keep).ravel())
    n_bins = max(setup.integrator.n_bins, integrator.n_bins)
    before, after = setup.integrator.matrix[:, untracked].tocsr(), integrator.matrix[:, untracked].tocsr()
    before.resize((n_bins, untracked.size))
    after.resize((n_bins, untracked.size))
    if (before != after).nnz:
        return None, "an untracked pixel changed bin"
    pixels = run["tracked_pixels"]
    old = _box(keep.shape, setup.centre, setup.forward_halfwidth)
    new = _box(keep.shape, xy, setup.forward_halfwidth)
    if ((old ^ new) & ~is_tracked).any():
        return None, "an untracked pixel changed side of the forward box"
    # the tracked columns' sums: the final matrix restricted to them (columns of pixels the mask
    # drops zeroed) applied to the (frames, columns) counts as to frames of that many pixels
    kept = keep.ravel()[pixels]
    columns = integrator.matrix[:, pixels].tocsc()
    from scipy import sparse  # on first use: a listing imports no scipy
    columns = (columns @ sparse.diags(kept.astype(columns.dtype))).tocsr()
    columns.eliminate_zeros()
    tracked_sums = qi.PixelBinSums(columns, pixel_shape=(1, pixels.size))
    counts = run["tracked"]
    sums = _bins(sums, integrator.n_bins) + tracked_sums.integrate(counts)
    if integrator.is_binary:
        variance = sums
    else:
        variance = _bins(variance, integrator.n_bins) + tracked_sums.integrate_variance(counts)
    forward = np.asarray(run["forward"], dtype=np.float64)
    moved = np.flatnonzero(old.ravel()[pixels] != new.ravel()[pixels])
    if moved.size:
        sign = np.where(new.ravel()[pixels[moved]], 1.0, -1.0)
        forward = forward + counts[:, moved].astype(np.float64) @ sign
    return {"sums": sums, "variance": variance, "forward": forward}, None


def _bins(sums, n_bins):
    """(frames, n_bins) float64, a new array: ``sums`` cut or padded with zeros (the resolved
    matrix may have one bin more or fewer; the bins cut hold no untracked pixel, checked by
    :func:`resolve`)."""
    out = np.zeros((sums.shape[0], n_bins))
    n = min(n_bins, sums.shape[1])
    out[:, :n] = sums[:, :n]
    return out


def _box(shape, xy, halfwidth):
    """(H, W) bool: the forward box of half-width ``halfwidth`` px around ``xy``."""
    y0, y1, x0, x1 = qi.box_bounds(shape, centre=xy, halfwidth=halfwidth)
    box = np.zeros(shape, bool)
    box[y0:y1, x0:x1] = True
    return box
