"""How one run is q-integrated: the ROI, beam centre, geometry, mask, dead pixels, radial bins
and integrator that the step parameters give for a frame sum (docs/q-integration.md).

A :class:`IntegrationRecipe` is made from a run's :class:`~eqegs_repo.params.effective.StepParameters`
and its number of frames; it reads no file and keeps no state, so the separate integration, the
fused pass (:mod:`eqegs_repo.cooking.fused`), the tracked passes
(:mod:`eqegs_repo.cooking.tracking`), the shared background
(:mod:`eqegs_repo.cooking.background`) and ``sample.export_poni`` all find the same centre and
mask for the same frame sum. Errors name the parameter and the record it came from
(``params.blame``).

Images are (H, W) arrays on the reconstruction canvas (y rows, x columns); a centre ``xy`` is
``(x, y)`` in px of that canvas, pixel centres at integer positions.
"""
from dataclasses import dataclass

import numpy as np

from eqegs_repo.cooking import limits
from eqegs_repo.errors import BadInput
from eqegs_repo.kernels import q_integration as qi
from eqegs_repo.kernels.reconstruction import detect_roi, validate_roi


@dataclass(frozen=True)
class Integration:
    """The final integration of a run's frame sum: ``centre``
    (:class:`~eqegs_repo.kernels.q_integration.BeamCentre`), ``dead`` (H, W) bool (the dead pixels
    masked), ``keep`` (H, W) bool (the pixels used) and ``integrator``
    (:class:`~eqegs_repo.kernels.q_integration.RadialIntegrator` with the pixel normalisation)."""

    centre: object
    dead: np.ndarray
    keep: np.ndarray
    integrator: object

    @property
    def xy(self):
        """``(x, y)`` px of the centre."""
        return (self.centre.x, self.centre.y)


@dataclass(frozen=True)
class IntegrationRecipe:
    """The q-integration recipe of one run: ``params`` (its
    :class:`~eqegs_repo.params.effective.StepParameters`: ``roi``, ``q_integration``,
    ``geometry``) and ``n_frames`` (frames of the run; sizes the radial sums checked against
    the memory limit)."""

    params: object
    n_frames: int

    @property
    def values(self):
        """The effective ``q_integration`` values (dict)."""
        return self.params["q_integration"]

    @property
    def forward_halfwidth(self):
        """Half-width (px) of the forward box summed around the centre per frame."""
        return self.values["forward_box_halfwidth"]

    def roi(self, image):
        """``(Roi, RoiDetection or None)`` of a frame-summed ``image`` (H, W) by the ``roi``
        record: detected (``x0`` null) or the record's bounds checked against the image."""
        roi_values = self.params["roi"]
        if roi_values["x0"] is None:
            with self.params.blame("roi.auto_half_size", "roi.median_prefilter"):
                detection = detect_roi(image, half_size=tuple(roi_values["auto_half_size"]),
                                       median_size=roi_values["median_prefilter"])
            return detection.roi, detection
        with self.params.blame("roi.x0", "roi.y0", "roi.x1", "roi.y1"):
            return validate_roi(roi_values["x0"], roi_values["y0"], roi_values["x1"], roi_values["y1"],
                                image_shape=image.shape), None

    def centre(self, image, roi):
        """The :class:`~eqegs_repo.kernels.q_integration.BeamCentre` of a frame sum ``image``
        (H, W) in ``roi``: the manual ``centre_x``, ``centre_y`` (px) or the one found by
        ``centre_method``."""
        qp = self.values
        if qp["centre_method"] == "manual":
            if qp["centre_x"] is None or qp["centre_y"] is None:
                raise BadInput(f"{self.params.describe('q_integration', 'centre_method')} needs "
                               f"centre_x and centre_y (px); found {qp['centre_x']!r}, {qp['centre_y']!r}")
            return qi.BeamCentre(float(qp["centre_x"]), float(qp["centre_y"]), roi, float("nan"), "manual")
        with self.params.blame("q_integration.centre_method", "roi"):
            return qi.find_beam_centre(image, roi=roi, threshold_frac=qp["centroid_threshold_frac"],
                                       iterations=qp["centre_iterations"], method=qp["centre_method"],
                                       spike_factor=qp["centre_spike_factor"],
                                       threshold_mode=qp["centroid_threshold_mode"])

    @property
    def geometry(self):
        """The :class:`~eqegs_repo.kernels.q_integration.DetectorGeometry` of the ``geometry``
        record (wavelength nm, pixel size mm, distance mm); tilted detectors are refused."""
        geo = self.params["geometry"]
        for tilt in ("tilt_rot1", "tilt_rot2"):
            if geo[tilt]:
                raise BadInput(f"{self.params.describe('geometry', tilt)}: tilted detectors are not "
                               "supported yet; the integration assumes a flat detector normal to the beam")
        with self.params.blame("geometry"):
            return qi.DetectorGeometry(wavelength_nm=geo["wavelength_nm"], pixel_size_mm=geo["pixel_size_mm"],
                                       distance_mm=geo["distance_mm"])

    def mask(self, image, coverage, xy, dead=None):
        """Pixels used (H, W) bool: covered, outside the direct-beam box, inside the sectors. With
        ``dead`` (the :meth:`dead_pixels` of the frame sum ``image``) also without those and
        without the hot pixels of ``image``; without it, the part of the mask that does not
        depend on the frame sum (what a tracked pass plans with). ``coverage`` (H, W): sensors
        covering each canvas pixel."""
        qp = self.values
        shape = image.shape
        keep = qi.coverage_keep(coverage)
        keep &= qi.direct_beam_keep(shape, centre=xy, halfwidth=qp["direct_exclusion_halfwidth"])
        if dead is not None:
            keep &= ~dead
            with self.params.blame("q_integration.hot_pixel_mad"):
                keep &= qi.hot_pixel_keep(image, centre=xy, n_mad=qp["hot_pixel_mad"], valid=keep)
        if qp["angle_mode"] == "specify":
            with self.params.blame("q_integration.sectors", "q_integration.angle_mode"):
                if not qp["sectors"]:
                    raise BadInput("angle_mode 'specify' needs at least one sector [start_deg, end_deg] in sectors")
                keep &= qi.sector_keep(shape, centre=xy, sectors=qp["sectors"], valid=keep)
        return keep

    def dead_pixels(self, image, coverage, xy):
        """(H, W) bool: the covered pixels outside the direct-beam box that read 0 over the whole
        run where their ring makes a 0 improbable (:func:`~eqegs_repo.kernels.q_integration.dead_pixel_keep`)."""
        valid = qi.coverage_keep(coverage) & qi.direct_beam_keep(
            image.shape, centre=xy, halfwidth=self.values["direct_exclusion_halfwidth"])
        return ~qi.dead_pixel_keep(image, centre=xy, valid=valid)

    def bins(self, shape, xy):
        """The radial bins of an (H, W) image around ``xy``: ``radial_bin_px`` wide, out to the
        farthest image corner; the radial sums (frames x bins) checked against the memory limit."""
        height, width = shape
        r_max = float(np.max(np.hypot(np.array([-0.5, width - 0.5]) - xy[0],
                                      np.array([-0.5, height - 0.5])[:, None] - xy[1])))
        with self.params.blame("q_integration.radial_bin_px"):
            bin_px = self.values["radial_bin_px"]
            limits.check_size(limits.radial_bytes(self.n_frames, r_max, bin_px, height * width),
                              "the radial sums (frames x bins) of radial_bin_px")
            return qi.RadialBins.uniform(bin_px=bin_px, r_max_px=r_max)

    def integrator(self, shape, xy, keep, weights=True):
        """The :class:`~eqegs_repo.kernels.q_integration.RadialIntegrator` of an (H, W) image around
        ``xy`` with mask ``keep`` (H, W) bool; ``weights`` false leaves out the pixel
        normalisation (only ``normalisation`` would change, not the sums)."""
        qp = self.values
        geometry = self.geometry
        bins = self.bins(shape, xy)
        with self.params.blame("q_integration.radial_bin_px", "q_integration.pixel_splitting",
                               "q_integration.direct_exclusion_halfwidth", "q_integration.sectors"):
            pixel_weights = None if not weights else qi.pixel_normalisation(
                shape, centre=xy, geometry=geometry, solid_angle_correction=qp["solid_angle_correction"],
                polarisation_factor=self.params["geometry"]["polarisation_factor"])
            return qi.RadialIntegrator.build(shape, centre=xy, geometry=geometry, bins=bins, keep=keep,
                                             pixel_splitting=qp["pixel_splitting"], pixel_weights=pixel_weights)

    def final(self, image, coverage, roi):
        """The :class:`Integration` of a run's frame sum ``image`` (H, W) with ``coverage``
        (H, W) in ``roi``: its centre, dead pixels, mask and integrator."""
        centre = self.centre(image, roi)
        xy = (centre.x, centre.y)
        dead = self.dead_pixels(image, coverage, xy)
        keep = self.mask(image, coverage, xy, dead)
        return Integration(centre, dead, keep, self.integrator(image.shape, xy, keep))
