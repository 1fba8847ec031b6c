"""The background run's integration, computed once and shared by every sample that names it.

A proposal's samples usually name one background ("scattering noise") run. Its integration
depends only on the background's raw files and sensor layout and on what the integrator sums:
the centre, the radial bins, the mask, the pixel splitting and the forward box. The samples'
centres differ slightly (each is found in the sample's own frame sum) and so may their hot
pixels, so the background is integrated as a *tracked* pass (:mod:`eqegs_repo.cooking.tracking`)
around the first sample's centre, and cached (in the repository's result cache, folder
``<proposal>__<background>__<tag>/background_integration``) with its tracked pixels' counts.
Another sample whose centre lies within :data:`~eqegs_repo.cooking.tracking.MARGIN_PX` of that
centre, and whose mask agrees outside the tracked pixels, gets the background's sums for its
own centre and mask exactly from the cache (:func:`~eqegs_repo.cooking.tracking.resolve`),
without reading the background again. Cache entries are named
``<group>_<x>_<y>.npz``: ``group`` a digest of the background's raw-file stats and sensor
layout, the library version and the q-integration parameters that shape the integrator, and
x, y the centre (``repr`` of the floats). Without a result cache (``cache_url=False``,
``use_cache=False``) the background is read by every cook.
"""
import numpy as np
import xarray as xr

from eqegs_repo.cooking import passes, tracking
from eqegs_repo.params.effective import digest
from eqegs_repo.version import __version__

FOLDER_STEP = "background_integration"
_SHAPING = ("radial_bin_px", "pixel_splitting", "direct_exclusion_halfwidth", "hot_pixel_mad",
            "angle_mode", "sectors", "forward_box_halfwidth")
"""q_integration fields of the group digest: those that shape the integrator besides the
centre and the hot pixels."""


class SharedBackground:
    """The background run of one cook: ``sample``, its ``params`` (StepParameters), ``run`` (raw
    files) and ``layout``, integrated by the ``recipe`` of the sample that subtracts it (an
    :class:`~eqegs_repo.cooking.recipe.IntegrationRecipe`), with its integrations cached in
    ``cache`` (a :class:`~eqegs_repo.cooking.cache.DatasetCache`, or None). ``bar(what, frames)``
    gives the progress bar of a read of the background."""

    def __init__(self, recipe, sample, params, run, layout, *, cache, bar):
        self.recipe, self.bar = recipe, bar
        self.sample, self.run, self.layout = sample, run, layout
        self.cache = cache
        qp = recipe.values
        self.group = digest({"version": __version__, "raw": run.stats,
                             "sensor_layout": params.fingerprint_values(("sensor_layout",)),
                             "q_integration": {name: qp[name] for name in _SHAPING}})[:16]
        self.folder = None
        if self.cache is not None:
            self.folder = self.cache.folder(sample.path, sample.proposal.key, sample.key, FOLDER_STEP)

    def nearby(self, xy):
        """``[(distance px, name)]`` of the cached integrations of this group whose centre is
        within :data:`~eqegs_repo.cooking.tracking.MARGIN_PX` of ``xy``, nearest first."""
        found = []
        for name in self.cache.keys(self.folder) if self.cache is not None else ():
            parts = name.split("_")
            if len(parts) != 3 or parts[0] != self.group:
                continue
            try:
                distance = float(np.hypot(float(parts[1]) - xy[0], float(parts[2]) - xy[1]))
            except ValueError:
                continue
            if distance <= tracking.MARGIN_PX:
                found.append((distance, name))
        return sorted(found)

    def integrate(self, integrator, xy, keep, image, coverage, workers=1):
        """The background's integration around ``xy`` with ``integrator`` and mask ``keep``: a
        dict of ``sums``, ``variance``, ``forward``, ``image`` (the background's frame sum) and
        ``shared`` (True: from the cache, the background not read). ``image`` and ``coverage``
        are the sample's frame sum and coverage, which choose the tracked pixels when the
        background has to be read."""
        for _, name in self.nearby(xy):
            entry = self.cache.load(self.folder, name)
            if entry is None:
                continue
            centre = tuple(entry.attrs["centre"])
            kept = entry["keep"].values.astype(bool)
            setup = passes.IntegrationSetup(self.recipe.integrator(kept.shape, centre, kept, weights=False),
                                            centre, entry.attrs["forward_halfwidth"],
                                            np.flatnonzero(entry["tracked_mask"].values.ravel()), kept)
            run = {"sums": entry["sums"].values, "forward": entry["forward"].values,
                   "variance": entry["variance"].values if "variance" in entry else entry["sums"].values,
                   "tracked": entry["tracked"].values, "tracked_pixels": entry["canvas_pixel"].values,
                   "image": entry["image"].values}
            resolved, _ = tracking.resolve(run, setup, integrator, keep, xy)
            if resolved is not None:
                return dict(resolved, image=entry["image"].values, shared=True)
        bar = self.bar(f"background {self.sample.key}", self.run.n_frames)
        if self.cache is None:  # nothing to share: integrate with the sample's integrator directly
            with bar:
                run = passes.integration_pass(self.run.stack, self.layout, integrator, xy,
                                              self.recipe.forward_halfwidth,
                                              frame_sum=True, workers=workers, progress=bar.update)
            return dict(run, shared=False)
        setup = tracking.plan(self.recipe, image, coverage, xy)
        with bar:
            run = passes.integration_pass(self.run.stack, self.layout, setup.integrator, setup.centre,
                                          setup.forward_halfwidth, frame_sum=True, workers=workers,
                                          tracked=setup.tracked, progress=bar.update)
        name = f"{self.group}_{setup.centre[0]!r}_{setup.centre[1]!r}"
        self.cache.save(self.folder, name, _entry(run, setup, self.sample.key))
        resolved, reason = tracking.resolve(run, setup, integrator, keep, xy)
        if resolved is None:
            raise RuntimeError(f"internal error: the background integration planned around this sample's "
                               f"centre does not resolve to it: {reason}")
        return dict(resolved, image=run["image"], shared=False)


def _entry(run, setup, key):
    """The cache entry of a tracked background pass."""
    tracked_mask = np.zeros(setup.keep.shape, bool)
    tracked_mask.ravel()[setup.tracked] = True
    data = {"sums": (("frame", "bin"), run["sums"]), "forward": ("frame", run["forward"]),
            "image": (("y", "x"), run["image"]), "keep": (("y", "x"), setup.keep),
            "tracked_mask": (("y", "x"), tracked_mask), "tracked": (("frame", "column"), _narrowest(run["tracked"]))}
    if run["variance"] is not run["sums"]:
        data["variance"] = (("frame", "bin"), run["variance"])
    return xr.Dataset(data, coords={"canvas_pixel": ("column", run["tracked_pixels"])},
                      attrs={"background": key, "centre": list(setup.centre),
                             "forward_halfwidth": float(setup.forward_halfwidth)})


def _narrowest(counts):
    """Integer counts in the smallest integer dtype that holds them all (exact; a background's
    counts per pixel and frame are small, so the cache entry shrinks 2-4 times); others as they are."""
    if counts.dtype.kind not in "iu" or counts.size == 0:
        return counts
    low, high = int(counts.min()), int(counts.max())
    dtype = np.min_scalar_type(high) if low >= 0 else np.result_type(np.min_scalar_type(low), np.min_scalar_type(high))
    return counts.astype(dtype, copy=False)
