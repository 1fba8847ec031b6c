"""Cook a sample: resolve spice (+ overrides), stream the raw data, run the kernels, cache.

``sample.cook(step, **overrides)`` calls :func:`cook`; ``sample.cooked`` is
``cook(sample, "e_spectrum_and_isf")``. The chain (PHYSICS.md §3):

1. ``reconstruction`` -- pass 1 over the sample's frames: frame-summed image by the
   ``sensor_layout`` record, counts per frame, ROI (auto or manual from ``roi``);
2. ``q_integration`` -- beam centre in the ROI, mask, one sparse integrator; pass 2 over the
   sample (and over the background sample named in ``q_integration.bg_sample_id``):
   radial sums of every frame, forward spectrum; background subtracted in q space;
3. ``e_spectrum_and_isf`` -- calibrations, energy spectra, ISF with Monte-Carlo errors, fit.

Each step's result is cached (:mod:`eqegs_repo.cooking.cache`) under a fingerprint of: the raw files'
sizes and mtimes (sample, and background for q_integration), the values of the spice types the
step reads (overrides applied; fields that only name output folders left out), the upstream
step's fingerprint and the library version. ``.attrs`` carry the fingerprint, the records used
(``spice``: type -> [scope, anchor, uuid, revision]), the ``overrides``, the effective
``parameters`` and the library version.
"""
import os

import numpy as np

from eqegs_repo.cooking import calibration as calibration_module
from eqegs_repo.cooking import datasets as results
from eqegs_repo.cooking import passes, progress
from eqegs_repo.cooking.cache import file_stats
from eqegs_repo.errors import BadInput, closest_keys
from eqegs_repo.io.app_names import check_step
from eqegs_repo.io.raw import check_sample_files
from eqegs_repo.params.chain import STEP_TYPES, UPSTREAM, chain_types
from eqegs_repo.params.effective import StepParameters, digest, normalise_overrides
from eqegs_repo.steps import e_spectrum as es
from eqegs_repo.steps import q_integration as qi
from eqegs_repo.steps.reconstruction import Roi, detect_roi, validate_roi
from eqegs_repo.steps.sensors import SensorLayout

WORKERS = max(1, min(2, os.cpu_count() or 1))  # threads computing blocks while the next one is read


def cook(sample, step="e_spectrum_and_isf", *, use_cache=True, **overrides):
    """The dataset of ``step`` for ``sample`` (see the module docstring)."""
    check_step(step)
    params = StepParameters(sample.spice, normalise_overrides(overrides),
                            label=f"{sample.proposal.key}/{sample.key}")
    return Cooker(sample, params, use_cache=use_cache).dataset(step)


def cache_status(sample, **overrides):
    """``{step: "fresh" | "stale" | ""}``: cached for the current inputs (spice and
    ``overrides``), only for older ones, or never. Steps whose inputs cannot be resolved (e.g.
    no q range) count by their entries."""
    cooker = Cooker(sample, StepParameters(sample.spice, normalise_overrides(overrides),
                                           label=sample.key))
    cache = sample.repository.cache
    out = {}
    for step in STEP_TYPES:
        if cache is None:
            out[step] = ""
            continue
        stored = cache.keys(cooker.cache_folder(step))
        try:
            fresh = cooker.key(step) in stored
        except BadInput:
            fresh = False
        out[step] = "fresh" if fresh else ("stale" if stored else "")
    return out


class _Run:
    """The raw files of one sample: their stats (no file opened), then the sensor stack and
    the velocity file, opened (headers checked) on first use."""

    def __init__(self, sample):
        self.sample = sample
        marker, layout = sample.marker, sample.layout
        paths = ([layout.marker_path(sample.path)]
                 + [layout.sensor_path(sample.path, k) for k in range(marker["n_sensors"])]
                 + [layout.velocity_path(sample.path)])
        try:
            self.stats = file_stats(sample.fs, paths)
        except FileNotFoundError as exc:
            raise BadInput(f"raw file missing in {sample.path}: {exc}") from None
        self.n_frames = marker["n_frames"]
        self._files = None

    def _open(self):
        if self._files is None:
            s = self.sample
            self._files = check_sample_files(s.fs, s.path, s.marker, s.layout)
        return self._files

    @property
    def stack(self):
        return self._open()[0]

    @property
    def velocity(self):
        return self._open()[1]


class Cooker:
    """Cooks the steps of one sample with fixed :class:`StepParameters`."""

    def __init__(self, sample, params, use_cache=True):
        self.sample = sample
        self.params = params
        self.cache = sample.repository.cache if use_cache else None
        self._keys = {}
        self._datasets = {}
        self._run = None
        self._background = None

    # --- inputs ------------------------------------------------------------------------------
    @property
    def run(self):
        if self._run is None:
            self._run = _Run(self.sample)
        return self._run

    def layout(self, params=None):
        params = params or self.params
        with params.blame("sensor_layout"):
            return SensorLayout.from_mapping(params["sensor_layout"])

    def background(self):
        """``(sample, params, run)`` of the background sample, or None when there is none."""
        bg_id = self.params["q_integration"]["bg_sample_id"]
        if bg_id is None:
            return None
        if self._background is None:
            proposal = self.sample.proposal
            if bg_id == self.sample.key or bg_id not in proposal.keys():
                reason = ("is the sample itself" if bg_id == self.sample.key else
                          f"is not a sample of proposal {proposal.key}")
                others = [k for k in proposal.keys() if k != self.sample.key]
                close = closest_keys(bg_id, others) or others[:5]
                raise BadInput(f"{self.params.describe('q_integration', 'bg_sample_id')} {reason}; "
                               f"closest: {', '.join(close)}")
            bg = proposal[bg_id]
            params = StepParameters(bg.spice, self.params.overrides, label=f"{proposal.key}/{bg_id}")
            self._background = (bg, params, _Run(bg))
        return self._background

    def key(self, step):
        """The fingerprint of ``step`` (hex)."""
        if step not in self._keys:
            from eqegs_repo import __version__

            payload = {"step": step, "version": __version__, "raw": self.run.stats,
                       "values": self.params.fingerprint_values(STEP_TYPES[step])}
            if UPSTREAM[step] is not None:
                payload["upstream"] = self.key(UPSTREAM[step])
            if step == "q_integration":
                background = self.background()
                if background is not None:
                    _, bg_params, bg_run = background
                    payload["background"] = {"raw": bg_run.stats,
                                             "values": bg_params.fingerprint_values(("sensor_layout",))}
            self._keys[step] = digest(payload)
        return self._keys[step]

    def cache_folder(self, step):
        s = self.sample
        return self.sample.repository.cache.folder(s.path, s.proposal.key, s.key, step)

    # --- steps -------------------------------------------------------------------------------
    def dataset(self, step):
        """The dataset of ``step``: from this run's memory, the disk cache, or computed."""
        if step in self._datasets:
            return self._datasets[step]
        key = self.key(step)
        ds = None
        if self.cache is not None:
            ds = self.cache.load(self.cache_folder(step), key)
        if ds is None:
            ds = getattr(self, f"_cook_{step}")()
            ds.attrs.update(self._stamp(step, key))
            if self.cache is not None:
                self.cache.save(self.cache_folder(step), key, ds)
        else:
            ds.attrs.update(self._stamp(step, key))  # same values: the current records' ids
        self._datasets[step] = ds
        return ds

    def _stamp(self, step, key):
        from eqegs_repo import __version__

        types = chain_types(step)
        return {"step": step, "proposal": self.sample.proposal.key, "sample": self.sample.key,
                "fingerprint": key, "library_version": __version__,
                "spice": self.params.provenance(types),
                "overrides": self.params.overrides_for(types),
                "parameters": self.params.fingerprint_values(types)}

    def _bar(self, what, frames=None):
        """A progress bar over the frames of a pass (:mod:`eqegs_repo.cooking.progress`)."""
        s = self.sample
        return progress.bar(frames or self.run.n_frames, f"{s.proposal.key}/{s.key} {what}", "frame")

    def _cook_reconstruction(self):
        layout = self.layout()
        stack = self.run.stack
        with self.params.blame("sensor_layout"):
            passes.check_layout(stack, layout, self.sample.path)
        with self._bar("reconstruction") as bar:
            image, per_frame, coverage = passes.frame_sum_pass(stack, layout, workers=WORKERS,
                                                               progress=bar.update)
        roi_values = self.params["roi"]
        if roi_values["x0"] is None:
            with self.params.blame("roi.auto_half_size", "roi.median_prefilter"):
                detection = detect_roi(image, tuple(roi_values["auto_half_size"]), roi_values["median_prefilter"])
            roi = detection.roi
        else:
            detection = None
            with self.params.blame("roi.x0", "roi.y0", "roi.x1", "roi.y1"):
                roi = validate_roi(roi_values["x0"], roi_values["y0"], roi_values["x1"], roi_values["y1"],
                                   image.shape)
        return results.reconstruction_dataset(image, per_frame, coverage, roi, detection, layout)

    def _centre(self, image, roi):
        qp = self.params["q_integration"]
        if qp["centre_method"] == "manual":
            if qp["centre_x"] is None or qp["centre_y"] is None:
                raise BadInput(f"{self.params.describe('q_integration', 'centre_method')} needs "
                               f"centre_x and centre_y (px); found {qp['centre_x']!r}, {qp['centre_y']!r}")
            return qi.BeamCentre(float(qp["centre_x"]), float(qp["centre_y"]), roi, float("nan"), "manual")
        with self.params.blame("q_integration.centre_method", "roi"):
            return qi.find_beam_centre(image, roi, qp["centroid_threshold_frac"], qp["centre_iterations"],
                                       qp["centre_method"])

    def _geometry(self):
        geo = self.params["geometry"]
        for tilt in ("tilt_rot1", "tilt_rot2"):
            if geo[tilt]:
                raise BadInput(f"{self.params.describe('geometry', tilt)}: tilted detectors are not "
                               "supported yet; the integration assumes a flat detector normal to the beam")
        with self.params.blame("geometry"):
            return qi.DetectorGeometry(geo["wavelength_nm"], geo["pixel_size_mm"], geo["distance_mm"])

    def _mask(self, image, coverage, xy):
        qp = self.params["q_integration"]
        shape = image.shape
        keep = qi.coverage_keep(coverage)
        keep &= qi.direct_beam_keep(shape, xy, qp["direct_exclusion_halfwidth"])
        with self.params.blame("q_integration.hot_pixel_mad"):
            keep &= qi.hot_pixel_keep(image, xy, qp["hot_pixel_mad"], valid=keep)
        if qp["angle_mode"] == "specify":
            with self.params.blame("q_integration.sectors", "q_integration.angle_mode"):
                if not qp["sectors"]:
                    raise BadInput("angle_mode 'specify' needs at least one sector [start_deg, end_deg] in sectors")
                keep &= qi.sector_keep(shape, xy, qp["sectors"], valid=keep)
        return keep

    def _cook_q_integration(self):
        rec = self.dataset("reconstruction")
        image, coverage = rec["image"].values, rec["coverage"].values
        qp = self.params["q_integration"]
        centre = self._centre(image, Roi(*rec.attrs["roi"]))
        xy = (centre.x, centre.y)
        geometry = self._geometry()
        keep = self._mask(image, coverage, xy)
        height, width = image.shape
        r_max = float(np.max(np.hypot(np.array([-0.5, width - 0.5]) - xy[0],
                                      np.array([-0.5, height - 0.5])[:, None] - xy[1])))
        with self.params.blame("q_integration.radial_bin_px", "q_integration.pixel_splitting",
                               "q_integration.direct_exclusion_halfwidth", "q_integration.sectors"):
            bins = qi.RadialBins.uniform(qp["radial_bin_px"], r_max)
            weights = qi.pixel_normalisation(image.shape, xy, geometry, qp["solid_angle_correction"],
                                             self.params["geometry"]["polarisation_factor"])
            integrator = qi.RadialIntegrator.build(image.shape, xy, geometry, bins, keep, qp["pixel_splitting"],
                                                   weights)
        layout = self.layout()
        with self.params.blame("q_integration.forward_box_halfwidth"), self._bar("q integration") as bar:
            sample = passes.integration_pass(self.run.stack, layout, integrator, xy, qp["forward_box_halfwidth"],
                                             workers=WORKERS, progress=bar.update)
        runs = {"intensity": sample["sums"], "variance": sample["variance"], "forward_sample": sample["forward"]}
        image_diff, background = image, None
        found = self.background()
        if found is not None:
            bg_sample, bg_params, bg_run = found
            bg_layout = self.layout(bg_params)
            self._check_background(bg_sample, bg_run, bg_layout, layout)
            with self._bar(f"background {bg_sample.key}", bg_run.n_frames) as bar:
                bg = passes.integration_pass(bg_run.stack, bg_layout, integrator, xy, qp["forward_box_halfwidth"],
                                             frame_sum=True, workers=WORKERS, progress=bar.update)
            with self.params.blame("q_integration.bg_scale_mode", "q_integration.bg_scale"):
                k = qi.background_scale(qp["bg_scale_mode"], sample["forward"], bg["forward"], qp["bg_scale"])
            runs["intensity"], runs["variance"] = qi.subtract_background(
                sample["sums"], sample["variance"], bg["sums"], bg["variance"], k)
            runs["forward_background"] = bg["forward"]
            image_diff = image - k * bg["image"]
            background = {"sample": bg_sample.key, "k": k, "mode": qp["bg_scale_mode"]}
        return results.q_integration_dataset(integrator, runs, centre, keep, image_diff, background)

    def _check_background(self, bg_sample, bg_run, bg_layout, layout):
        where = self.params.describe("q_integration", "bg_sample_id")
        if bg_run.n_frames != self.run.n_frames:
            raise BadInput(f"background sample {bg_sample.key} has {bg_run.n_frames} frames but "
                           f"{self.sample.key} has {self.run.n_frames}; runs must share the velocity "
                           f"cycle [{where}]")
        if tuple(bg_layout.canvas_shape) != tuple(layout.canvas_shape):
            raise BadInput(f"background sample {bg_sample.key} reconstructs to images of "
                           f"{list(bg_layout.canvas_shape)} px but {self.sample.key} to "
                           f"{list(layout.canvas_shape)} [{where}]")
        with self.params.blame("sensor_layout"):
            passes.check_layout(bg_run.stack, bg_layout, bg_sample.path)

    def _cook_e_spectrum_and_isf(self):
        qds = self.dataset("q_integration")
        q_range = self.params["q_range"]
        for name in ("q_min", "q_max"):
            if q_range[name] is None:
                raise BadInput(f"q_range.{name} is not set for {self.params.label}: seed it, e.g. "
                               f"proposal.spice.seed('q_range', q_min=10.1, q_max=14.1), or pass "
                               f"{name}=... to cook")
        ep = self.params["e_spectrum"]
        measured = self.run.velocity.read()
        calibration = calibration_module.resolve(self.params, measured, qds["two_theta"].values)
        with self.params.blame("q_range.q_min", "q_range.q_max", "e_spectrum", "sp_param"):
            spectra = es.energy_spectra(
                qds["forward_sample"].values, qds["forward_sample"].values, qds["intensity"].values,
                qds["variance"].values, qds["q"].values, calibration.angle_factors, calibration.velocity,
                q_range["q_min"], q_range["q_max"], calibration.v0_offset, calibration.start_cut_frames,
                ep["turnaround_cut_frac"], ep["turnaround_guard_frames"], ep["rebin_factor"], ep["binning"],
                bin_pixels=qds["npix"].values)
        seed = ep["seed"] if ep["seed"] is not None else int(self.key("e_spectrum_and_isf")[:8], 16)
        with self.params.blame("e_spectrum"):
            isf = es.isf_from_spectra(spectra, ep["bg_fit_enabled"], ep["bg_n_points"], ep["relax_bg_coeff"],
                                      ep["isf_error_threshold"], ep["n_mc"], ep["mc_noise"], seed,
                                      ep["isf_normalisation"], ep["fit_model"])
        return results.e_spectrum_dataset(qds, calibration, spectra, isf, q_range["q_min"], q_range["q_max"])
