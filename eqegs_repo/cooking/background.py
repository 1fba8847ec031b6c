"""The background run's integration, computed once and shared by every sample that names it.

A proposal's samples usually name one background ("scattering noise") run. Its integration
depends only on the background's raw files and sensor layout and on what the integrator sums:
the centre, the radial bins, the mask, the pixel splitting and the forward box. It is cached
(in the repository's result cache, folder ``<proposal>__<background>__<tag>/background_integration``)
under a name holding

* a digest of the background's raw-file stats and sensor layout, the library version and the
  q-integration parameters that shape the integrator (bin width, splitting, masks, forward box)
  or find the centre,
* the centre (x, y), written exactly (``repr`` of the floats),
* a digest of the bin edges, the mask and the forward box,

so N samples sharing a background read it once. The samples' centres differ slightly (each is
found in the sample's own frame sum), so a sample whose centre lies within
:data:`CENTRE_TOLERANCE_PX` of a cached background integration integrates around that centre
instead (:meth:`SharedBackground.nearest_centre`; the dataset's ``attrs["passes"]`` records the
sample's own centre and the shift). Without a result cache (``cache_url=False``,
``use_cache=False``) the background is read by every cook.
"""
import numpy as np
import xarray as xr

from eqegs_repo.cooking import passes
from eqegs_repo.params.effective import digest

CENTRE_TOLERANCE_PX = 0.01
"""Largest distance (px) between the centre found in a run's frame sum and the centre its
integration uses: for a probe's centre (docs/q-integration.md#one-read-per-run) and for a shared
background integration."""
FOLDER_STEP = "background_integration"
_SHAPING = ("radial_bin_px", "pixel_splitting", "direct_exclusion_halfwidth", "hot_pixel_mad",
            "angle_mode", "sectors", "forward_box_halfwidth",
            "centre_method", "centroid_threshold_frac", "centre_iterations")
"""q_integration fields in the group digest: those that shape the integrator, and those of the
centre finding, so that changing how the centre is found is never hidden by sharing."""


class SharedBackground:
    """The background run of one cook: ``sample``, ``run`` (raw files) and ``layout``, with its
    cached integrations (``cooker.cache``; None: nothing shared)."""

    def __init__(self, cooker, sample, params, run, layout):
        from eqegs_repo import __version__

        self.sample, self.run, self.layout = sample, run, layout
        self.cache = cooker.cache
        qp = cooker.params["q_integration"]
        self.group = digest({"version": __version__, "raw": run.stats,
                             "sensor_layout": params.fingerprint_values(("sensor_layout",)),
                             "q_integration": {name: qp[name] for name in _SHAPING}})[:16]
        self.folder = None
        if self.cache is not None:
            self.folder = self.cache.folder(sample.path, sample.proposal.key, sample.key, FOLDER_STEP)

    def _centres(self):
        """{(x, y): [entry names]} of the cached integrations of this group."""
        found = {}
        if self.cache is None:
            return found
        for name in self.cache.keys(self.folder):
            parts = name.split("_")
            if len(parts) == 4 and parts[0] == self.group:
                try:
                    found.setdefault((float(parts[1]), float(parts[2])), []).append(name)
                except ValueError:
                    continue
        return found

    def nearest_centre(self, xy):
        """The centre (x, y) of the cached integration nearest to ``xy`` within
        :data:`CENTRE_TOLERANCE_PX`, or None."""
        best, distance = None, CENTRE_TOLERANCE_PX
        for centre in self._centres():
            d = float(np.hypot(centre[0] - xy[0], centre[1] - xy[1]))
            if d <= distance:
                best, distance = centre, d
        return best

    def entry_name(self, integrator, xy, forward_halfwidth, keep):
        """The cache name of the integration with this integrator (its matrix follows from the
        centre, the bin edges, the mask and the splitting), centre, forward box and mask."""
        shape = digest({"edges": integrator.bins.edges_px.tolist(), "image_shape": list(np.shape(keep)),
                        "keep": np.packbits(np.asarray(keep, bool)).tobytes().hex(),
                        "forward_halfwidth": float(forward_halfwidth)})[:16]
        return f"{self.group}_{float(xy[0])!r}_{float(xy[1])!r}_{shape}"

    def integrate(self, integrator, xy, forward_halfwidth, keep, workers=1):
        """The background's integration (dict of :func:`~eqegs_repo.cooking.passes.integration_pass`
        with the frame sum ``image``, and ``shared``: True when it came from the cache)."""
        name = self.entry_name(integrator, xy, forward_halfwidth, keep)
        if self.cache is not None:
            ds = self.cache.load(self.folder, name)
            if ds is not None:
                variance = ds["variance"].values if "variance" in ds else ds["sums"].values
                return {"sums": ds["sums"].values, "variance": variance, "forward": ds["forward"].values,
                        "image": ds["image"].values, "shared": True}
        out = passes.integration_pass(self.run.stack, self.layout, integrator, xy, forward_halfwidth,
                                      frame_sum=True, workers=workers)
        if self.cache is not None:
            self.cache.save(self.folder, name, _entry(out, xy, self.sample.key))
        return dict(out, shared=False)


def _entry(out, xy, key):
    data = {"sums": (("frame", "q"), out["sums"]), "forward": ("frame", out["forward"]),
            "image": (("y", "x"), out["image"])}
    if out["variance"] is not out["sums"]:
        data["variance"] = (("frame", "q"), out["variance"])
    return xr.Dataset(data, attrs={"background": key, "centre": [float(xy[0]), float(xy[1])]})
