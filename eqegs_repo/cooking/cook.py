"""Cook a sample: resolve spice (+ overrides), stream the raw data, run the kernels, cache.

``sample.cook(step, **overrides)`` calls :func:`cook`; ``sample.cooked`` is
``cook(sample, "e_spectrum_and_isf")``. The chain (docs/physics.md, docs/architecture.md):

1. ``reconstruction`` -- frame-summed image by the sensor layout, counts per frame, ROI (auto
   or manual from ``roi``);
2. ``q_integration`` -- beam centre in the ROI, mask, one sparse integrator; radial sums of every
   frame of the sample, forward spectrum; the background sample named in
   ``q_integration.bg_sample_id`` integrated the same way (once, shared by the samples that name
   it: :mod:`eqegs_repo.cooking.background`) and subtracted in q space;
3. ``e_spectrum_and_isf`` -- calibrations, energy spectra, ISF with Monte-Carlo errors, fit.

When q integration is cooked and the reconstruction is not cached, both are computed in one read
of the sample (:mod:`eqegs_repo.cooking.fused`); otherwise the reconstruction reads the sample
and the integration reads it again (docs/q-integration.md#one-read-per-run). The q-integration
dataset's ``attrs["passes"]`` says which was done.

Each step's result is cached (:mod:`eqegs_repo.cooking.cache`) under a fingerprint of: the raw files'
sizes and mtimes (sample, and background for q_integration), the values of the spice types the
step reads (overrides applied; fields that only name output folders left out), the upstream
step's fingerprint and the library version. ``.attrs`` carry the fingerprint, the records used
(``spice``: type -> [scope, anchor, uuid, revision]), the ``overrides``, the effective
``parameters`` and the library version.

Three rules keep the numbers independent of where the data sit and of defaults that do not fit:

* the sensor layout comes from the marker (``n_sensors`` strips of ``sensor_shape`` side by
  side) for every ``sensor_layout`` field that no record or override sets
  (:func:`effective_layout`);
* a null ``e_spectrum.seed`` is derived from the data's content (per-frame sums of pass 1, the
  background's forward counts, the velocity waveform) and the parameter values, never from
  paths or file times (:meth:`Cooker.content_seed`), so a copied tree gives the same numbers;
* the background run of a proposal (the sample its own ``q_integration.bg_sample_id`` names) is
  integrated without subtraction and has no E spectrum (:func:`applicable_steps`).
"""
import hashlib
import os
import warnings

import numpy as np
import xarray as xr

from eqegs_repo.cooking import calibration as calibration_module
from eqegs_repo.cooking import datasets, fused, limits, passes, progress
from eqegs_repo.cooking.background import SharedBackground
from eqegs_repo.cooking.inputs import (background_refusal, effective_layout, is_background_run, open_input,
                                       warn_fallback)
from eqegs_repo.cooking.recipe import IntegrationRecipe
from eqegs_repo.cooking.step_cooking import cooking_of
from eqegs_repo.errors import PHYSICS_WARNINGS, BadInput, EqegsError, closest_keys
from eqegs_repo.kernels import e_spectrum as es
from eqegs_repo.kernels import q_integration as qi
from eqegs_repo.kernels.reconstruction import Roi
from eqegs_repo.kernels.sensors import coverage as layout_coverage
from eqegs_repo.params.chain import STEP_TYPES, UPSTREAM, chain_types
from eqegs_repo.params.effective import StepParameters, digest, normalise_overrides
from eqegs_repo.snapshot import remembered
from eqegs_repo.step_table import background_steps, check_step
from eqegs_repo.step_table import names as step_names
from eqegs_repo.version import __version__

WORKERS = max(1, min(2, os.cpu_count() or 1))  # threads computing blocks while the next one is read
FUSE = True  # reconstruction and q integration in one read of the sample when possible (see above)
RESULT_FORMAT = 2
"""The layout of the built-in steps' datasets (variables, coordinates, attrs), part of every
fingerprint: a cached result of an older layout is never read as one of this layout (it is cooked
again). Raise it with any change of that layout; tests/eqegs_repo/cooking/test_cook_cache.py
notices a change made without it. 2: the q of a result and the physics checks."""
LEFT_STEP = "sample_integration"  # cache folder of the sample sums the reconstruction step leaves


def cook(sample, step="e_spectrum_and_isf", *, use_cache=True, **overrides):
    """The dataset of ``step`` for ``sample`` (see the module docstring)."""
    check_step(step)
    params = StepParameters(sample.spice, normalise_overrides(overrides),
                            label=f"{sample.proposal.key}/{sample.key}")
    ds = Cooker(sample, params, use_cache=use_cache).dataset(step)
    warn_physics(ds.attrs, f"{sample.proposal.key}/{sample.key}")
    return ds


def warn_physics(attrs, label, stacklevel=4):
    """One :class:`~eqegs_repo.errors.PhysicsWarning` (the subclass of the check) for every check
    of ``attrs["physics_checks"]`` (a dataset's attrs) that failed, its message prefixed by
    ``label`` (the sample); attrs without checks warn nothing. The result is returned all the same.
    ``stacklevel``: of :func:`warnings.warn`, so that the warning points at the user's call."""
    for check in attrs.get("physics_checks", ()):
        if check["failed"]:
            warnings.warn(f"{label}: {check['message']}", PHYSICS_WARNINGS[check["name"]], stacklevel=stacklevel)


def applicable_steps(sample, **overrides):
    """The steps that apply to ``sample``: all of them, or, for the proposal's background run (its
    resolved ``q_integration.bg_sample_id`` names itself), :func:`eqegs_repo.step_table.background_steps`
    (reconstruction and q_integration)."""
    params = StepParameters(sample.spice, normalise_overrides(overrides), label=f"{sample.proposal.key}/{sample.key}")
    return background_steps() if is_background_run(sample, params) else step_names()


def cache_status(sample, **overrides):
    """``{step: "fresh" | "stale" | ""}``: cached for the current inputs (spice and
    ``overrides``), only for older ones, or never. Steps whose inputs cannot be resolved (e.g.
    no q range) count by their entries; a calibration folder that cannot be fingerprinted raises
    :class:`~eqegs_repo.cooking.calibration.CalibrationFolderProblem` (the sample's problem in
    ``table()``). A step with no entry is never fresh: its fingerprint is not computed (a listing
    of thousands of samples hashes only what it compares), only the checks of its step's
    fingerprint hook run."""
    cooker = Cooker(sample, StepParameters(sample.spice, normalise_overrides(overrides),
                                           label=sample.key))
    cache = sample.repository.cache
    out = {}
    for step in step_names():
        if cache is None:
            out[step] = ""
            continue
        stored = cache.keys(cooker.cache_folder(step))
        try:
            if stored:
                fresh = cooker.key(step) in stored
            else:
                cooking_of(step).fingerprint(cooker)  # its checks: a calibration folder's problem
                fresh = False
        except calibration_module.CalibrationFolderProblem:
            raise  # the sample's problem (a FIFO, an untrusted or hung folder), never "not cooked"
        except BadInput:
            fresh = False
        out[step] = "fresh" if fresh else ("stale" if stored else "")
    return out


class Cooker:
    """Cooks the steps of one sample with fixed :class:`StepParameters`."""

    def __init__(self, sample, params, use_cache=True, fuse=None):
        self.sample = sample
        self.params = params
        self.cache = sample.repository.cache if use_cache else None
        self.fuse = FUSE if fuse is None else bool(fuse)
        self._keys = {}
        self._datasets = {}
        self._run = None
        self._background = None
        self._warned = False

    # --- inputs ------------------------------------------------------------------------------
    @property
    def run(self):
        """The input of the cook (:func:`~eqegs_repo.cooking.inputs.open_input`): the raw run
        or the app's reconstructed stack, by ``reconstruction.input``."""
        if self._run is None:
            self._run = open_input(self.sample, self.params, self.layout())
        return self._run

    @property
    def recipe(self):
        """The :class:`~eqegs_repo.cooking.recipe.IntegrationRecipe` of this sample's run."""
        return IntegrationRecipe(self.params, self.run.n_frames)

    def layout(self, params=None, sample=None):
        """The :class:`~eqegs_repo.kernels.sensors.SensorLayout` of ``sample`` (default: this
        sample) with ``params`` (default: this sample's), by :func:`effective_layout`."""
        return self.layout_and_source(params, sample)[0]

    def layout_and_source(self, params=None, sample=None):
        """``(SensorLayout, source)`` of :func:`effective_layout` (source ``"marker"`` or ``"spice"``)."""
        params, sample = params or self.params, sample or self.sample
        return effective_layout(params, sample.marker, sample.marker_path)

    def background(self):
        """``(sample, params, run)`` of the background sample, or None when there is none."""
        bg_id = self.params["q_integration"]["bg_sample_id"]
        if bg_id is None or is_background_run(self.sample, self.params):
            return None
        if self._background is None:
            proposal = self.sample.proposal
            if bg_id not in proposal:  # compared in NFC
                others = [k for k in proposal.keys() if k != self.sample.key]
                close = closest_keys(bg_id, others) or others[:5]
                raise BadInput(f"{self.params.describe('q_integration', 'bg_sample_id')} is not a sample of "
                               f"proposal {proposal.key}; closest: {', '.join(close)}")
            self._background = remembered(("background", proposal, bg_id, digest(self.params.overrides)),
                                          lambda: self._open_background(proposal[bg_id]))
        return self._background

    def _open_background(self, bg):
        params = StepParameters(bg.spice, self.params.overrides, label=f"{bg.proposal.key}/{bg.key}")
        return bg, params, open_input(bg, params, self.layout(params, bg))

    def key(self, step):
        """The fingerprint of ``step`` (hex)."""
        if step not in self._keys:
            # run.stats: the raw files, or the app's stack (with the velocity file): never the same
            payload = {"step": step, "version": __version__, "format": RESULT_FORMAT, "raw": self.run.stats,
                       "values": self.params.fingerprint_values(STEP_TYPES[step])}
            if UPSTREAM[step] is not None:
                payload["upstream"] = self.key(UPSTREAM[step])
            payload.update(cooking_of(step).fingerprint(self))
            self._keys[step] = digest(payload)
        return self._keys[step]

    def trusted_calibration_dirs(self):
        """The folders whose calibration files may be read and run (the repository's setting
        and ``$EQEGS_TRUSTED_CALIBRATION_DIRS``)."""
        setting = getattr(self.sample.repository, "trusted_calibration_dirs", None)
        return calibration_module.trusted_folders(setting)

    def cache_folder(self, step):
        s = self.sample
        return self.sample.repository.cache.folder(s.path, s.proposal.key, s.key, step)

    # --- steps -------------------------------------------------------------------------------
    def dataset(self, step):
        """The dataset of ``step``: from this run's memory, the disk cache, or computed."""
        ds = self.loaded(step)
        if ds is None:
            if not self._warned:
                self._warned = True
                warn_fallback(self.run)
            ds = self.store(step, cooking_of(step).cook(self))
        return ds

    def loaded(self, step):
        """The dataset of ``step`` from this run's memory or the disk cache, or None."""
        if step not in self._datasets and self.cache is not None:
            ds = self.cache.load(self.cache_folder(step), self.key(step))
            if ds is not None:
                ds.attrs.update(self._stamp(step, self.key(step)))  # same values: the current records' ids
                self._datasets[step] = ds
        return self._datasets.get(step)

    def store(self, step, ds):
        """Stamp a computed dataset of ``step`` with its provenance, cache it and keep it."""
        key = self.key(step)
        ds.attrs.update(self._stamp(step, key))
        if self.cache is not None:
            self.cache.save(self.cache_folder(step), key, ds)
        self._datasets[step] = ds
        return ds

    def _stamp(self, step, key):
        types = chain_types(step)
        return {"step": step, "proposal": self.sample.proposal.key, "sample": self.sample.key,
                "fingerprint": key, "library_version": __version__, "input": self.run.provenance(),
                "spice": self.params.provenance(types),
                "overrides": self.params.overrides_for(types),
                "parameters": self.params.fingerprint_values(types)}

    def content_seed(self, q_range=None):
        """The Monte-Carlo seed when ``e_spectrum.seed`` is null: 32 bits of the SHA-256 of the
        data's content (the sample's counts per frame from pass 1, the background's forward
        counts per frame, the measured velocity waveform, the sensor layout used) and of the
        parameter values, without the calibration folder's path (its files count by SHA-256).
        Paths and file times never enter, so copies of the data give the same seed.
        ``q_range`` ``(q_min, q_max)`` nm⁻¹: the seed of a cook with that q range instead."""
        rec, qds = self.dataset("reconstruction"), self.dataset("q_integration")
        content = hashlib.sha256()
        arrays = [rec["counts_per_frame"].values, self.run.read_velocity()]
        if "forward_background" in qds:
            arrays.append(qds["forward_background"].values)
        for array in arrays:
            content.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
        values = self.params.fingerprint_values(chain_types("e_spectrum_and_isf"))
        values["calibration"].pop("folder", None)
        if q_range is not None:
            values["q_range"] = dict(values["q_range"], q_min=float(q_range[0]), q_max=float(q_range[1]))
        payload = {"content": content.hexdigest(), "values": values, "layout": rec.attrs["sensor_layout"],
                   "background": qds.attrs["background"]}
        return int(digest(payload)[:8], 16)

    def bar(self, what, frames=None):
        """A progress bar over the ``frames`` (default: the sample's) of a pass
        (:mod:`eqegs_repo.cooking.progress`); ``what`` names the pass."""
        s = self.sample
        return progress.bar(frames or self.run.n_frames, f"{s.proposal.key}/{s.key} {what}", "frame")

    def checked_layout(self):
        """The sample's sensor layout, checked against its raw files."""
        layout = self.layout()
        with self.params.blame("sensor_layout.canvas_shape"):
            limits.check_size(limits.image_bytes(layout.canvas_shape), "the images of canvas_shape")
        with self.params.blame("sensor_layout"):
            passes.check_layout(self.run.stack, self.run.pass_layout(layout), self.sample.path)
        return layout

    def _cook_reconstruction(self):
        layout = self.checked_layout()
        if self.fuse and self.cache is not None and self.foreseen_q_key() is not None:
            return self.read_fused(layout, leave=True)[0]
        with self.bar("reconstruction") as bar:
            image, per_frame, _ = passes.frame_sum_pass(self.run.stack, self.run.pass_layout(layout),
                                                        workers=WORKERS, progress=bar.update)
        return self.reconstruction_dataset(image, per_frame, layout_coverage(layout), layout)

    def foreseen_q_key(self):
        """The q-integration fingerprint of this cook, or None when the parameters do not resolve
        (the reconstruction then reads the sample for itself alone)."""
        try:
            return self.key("q_integration")
        except EqegsError:
            return None

    def read_fused(self, layout, leave=False):
        """One read of the sample (:mod:`~eqegs_repo.cooking.fused`): ``(reconstruction dataset,
        integration, sums, info)`` (``sums`` None when the pass cannot be resolved). With
        ``leave`` (the reconstruction step cooked alone) the resolved sums are left in the cache
        for the q-integration step (:meth:`left_sums`), and a pass that cannot be resolved is
        left at that: the sample is not read again here."""
        pass_layout = self.run.pass_layout(layout)  # the app's stack is read as one canvas-wide sensor
        with self.bar("reconstruction + q integration") as bar:
            run, refused = fused.read_run(self.run.stack, pass_layout, self.recipe, coverage=layout_coverage(layout),
                                          workers=WORKERS, progress=bar.update)
        rec = self.reconstruction_dataset(run["image"], run["per_frame"], run["coverage"], layout)
        roi = Roi(*rec.attrs["roi"])
        if leave and run["setup"] is None:
            return rec, None, None, None
        try:
            integration, sums, info = fused.resolve(run, refused, self.recipe, roi, self.run.stack, pass_layout,
                                                    workers=WORKERS,
                                                    bar=lambda frames: self.bar("hot pixels read again", frames))
        except EqegsError:
            if not leave:
                raise
            return rec, None, None, None  # the q integration will say what is wrong; the reconstruction stands
        if leave and sums is not None:
            data = {"sums": (("frame", "bin"), sums["sums"]), "forward": ("frame", sums["forward"])}
            if sums["variance"] is not sums["sums"]:
                data["variance"] = (("frame", "bin"), sums["variance"])
            self.cache.save(self.left_folder(), self.foreseen_q_key(),
                            xr.Dataset(data, attrs={"passes": info, "centre": list(integration.xy)}))
        return rec, integration, sums, info

    def left_folder(self):
        """The cache folder of the sample sums left by the reconstruction step."""
        s = self.sample
        return self.cache.folder(s.path, s.proposal.key, s.key, LEFT_STEP)

    def left_sums(self, integration):
        """``(sums dict, passes info)`` that the reconstruction step's read left for this
        q integration (same fingerprint, same centre), or None."""
        if self.cache is None:
            return None
        entry = self.cache.load(self.left_folder(), self.key("q_integration"))
        if entry is None or entry.attrs.get("centre") != list(integration.xy) or \
                entry["sums"].shape[1] != integration.integrator.n_bins:
            return None
        sums = entry["sums"].values
        variance = entry["variance"].values if "variance" in entry else sums
        return {"sums": sums, "variance": variance, "forward": entry["forward"].values}, dict(entry.attrs["passes"])

    def reconstruction_dataset(self, image, per_frame, coverage, layout):
        """The reconstruction dataset of a frame sum: the ROI found (auto) or checked (manual)."""
        roi, detection = self.recipe.roi(image)
        ds = datasets.reconstruction_dataset(image, per_frame, coverage, roi, detection, layout)
        ds.attrs["sensor_layout_source"] = self.layout_and_source()[1]
        return ds

    def _cook_q_integration(self):
        rec = self.loaded("reconstruction")
        if rec is None and self.fuse:
            return self.integrate_fused()
        if rec is not None:
            integration = self.recipe.final(rec["image"].values, rec["coverage"].values, Roi(*rec.attrs["roi"]))
            left = self.left_sums(integration)
            if left is not None:
                sums, info = left
                info["read_by"] = "reconstruction"
                return self.q_integration_dataset(sums, integration, rec["image"].values, rec["coverage"].values,
                                                  info, self.shared_background())
        reason = "the reconstruction was cached" if rec is not None else "fusing is switched off"
        return self.integrate_separately(self.dataset("reconstruction"),
                                         {"path": "separate", "sample_reads": 1 if rec is not None else 2,
                                          "reason": reason})

    def integrate_fused(self):
        """Reconstruction and q integration in one read of the sample (:mod:`~eqegs_repo.cooking.fused`);
        stores the reconstruction dataset too, and reads the sample again when the pass cannot
        be resolved to the run's centre and mask."""
        layout = self.checked_layout()
        shared = self.shared_background()
        rec, integration, sums, info = self.read_fused(layout)
        rec = self.store("reconstruction", rec)
        if sums is None:
            return self.integrate_separately(rec, info)
        return self.q_integration_dataset(sums, integration, rec["image"].values, rec["coverage"].values, info,
                                          shared)

    def integrate_separately(self, rec, passes_info):
        """Q integration with the frame sum of ``rec`` (a reconstruction dataset) known: centre,
        mask, integrator, then one read of the sample. ``passes_info`` goes to ``attrs["passes"]``."""
        image, coverage = rec["image"].values, rec["coverage"].values
        shared = self.shared_background()
        integration = self.recipe.final(image, coverage, Roi(*rec.attrs["roi"]))
        with self.params.blame("q_integration.forward_box_halfwidth"), self.bar("q integration") as bar:
            sample = passes.integration_pass(self.run.stack, self.run.pass_layout(self.layout()),
                                             integration.integrator, integration.xy,
                                             self.recipe.forward_halfwidth, workers=WORKERS, progress=bar.update)
        return self.q_integration_dataset(sample, integration, image, coverage, passes_info, shared)

    def q_integration_dataset(self, sample, integration, image, coverage, passes_info, shared):
        """The dataset of the sample's integration ``sample`` (sums, variance, forward) by
        ``integration`` (:class:`~eqegs_repo.cooking.recipe.Integration`: centre, mask, dead
        pixels, integrator), the background (``shared``) subtracted; ``image`` and ``coverage``
        are the sample's frame sum and coverage (H, W)."""
        qp = self.params["q_integration"]
        integrator, keep, xy = integration.integrator, integration.keep, integration.xy
        runs = {"intensity": sample["sums"], "variance": sample["variance"], "forward_sample": sample["forward"]}
        image_diff, background = image, None
        info = dict(passes_info, background=None)
        if shared is not None:
            bg = shared.integrate(integrator, xy, keep, image, coverage, workers=WORKERS)
            with self.params.blame("q_integration.bg_scale_mode", "q_integration.bg_scale"):
                k = qi.background_scale(sample["forward"], bg["forward"], mode=qp["bg_scale_mode"],
                                        bg_scale=qp["bg_scale"])
            runs["intensity"], runs["variance"] = qi.subtract_background(
                sample["sums"], sample["variance"], bg["sums"], bg["variance"], k=k)
            runs["forward_background"] = bg["forward"]
            image_diff = image - k * bg["image"]
            background = {"sample": shared.sample.key, "k": k, "mode": qp["bg_scale_mode"]}
            info["background"] = "shared" if bg["shared"] else "read"
        ds = datasets.q_integration_dataset(integrator, runs, integration.centre, keep, image_diff, background,
                                           integration.dead)
        ds.attrs["passes"] = info
        return ds

    def shared_background(self):
        """The :class:`SharedBackground` of the background sample (checked against this sample),
        or None when there is none."""
        found = self.background()
        if found is None:
            return None
        bg_sample, bg_params, bg_run = found
        bg_layout = self.layout(bg_params)
        self._check_background(bg_sample, bg_run, bg_layout, self.layout())
        return SharedBackground(self.recipe, bg_sample, bg_params, bg_run, bg_run.pass_layout(bg_layout),
                                cache=self.cache, bar=self.bar)

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
            passes.check_layout(bg_run.stack, bg_run.pass_layout(bg_layout), bg_sample.path)

    def _cook_e_spectrum_and_isf(self):
        if is_background_run(self.sample, self.params):
            raise BadInput(background_refusal(self.sample, self.params, "e_spectrum_and_isf"))
        measured = self.run.read_velocity()  # before the integration: a broken file fails at once
        qds = self.dataset("q_integration")
        q_min, q_max = self.params.q_range()
        calibration = self.calibration(qds, measured)
        spectra, isf, seed_source = self.spectra_and_isf(qds, calibration, q_min, q_max)
        ds = datasets.e_spectrum_dataset(qds, calibration, spectra, isf,
                                         datasets.q_of_range(qds, spectra, q_min, q_max))
        ds.attrs["seed_source"] = seed_source
        ds.attrs.update(datasets.checks_attrs(self.physics_checks(spectra, isf)))
        return ds

    def physics_checks(self, spectra, isf):
        """The physics checks (:func:`eqegs_repo.kernels.e_spectrum.physics_checks`) of one E
        spectrum and ISF with the thresholds of the ``e_spectrum.check_*`` fields."""
        ep = self.params["e_spectrum"]
        with self.params.blame("e_spectrum"):
            return es.physics_checks(spectra, isf, max_step_per_resolution=ep["check_max_step_per_resolution"],
                                     max_step_per_line_width=ep["check_max_step_per_line_width"],
                                     min_window_ratio=ep["check_min_window_ratio"],
                                     min_kept_frames=ep["check_min_kept_frames"],
                                     max_f0_pull=ep["check_max_f0_pull"])

    def calibration(self, qds, measured):
        """The velocity and angle calibrations (:func:`eqegs_repo.cooking.calibration.resolve`)
        of the q bins of ``qds`` (a q-integration dataset), ``measured`` the velocity waveform."""
        return calibration_module.resolve(self.params, measured, qds["two_theta"].values,
                                          self.trusted_calibration_dirs(), measured_path=self.run.velocity_path)

    def spectra_and_isf(self, qds, calibration, q_min, q_max, q_range_seed=False):
        """``(EnergySpectra, IsfResult, seed_source)`` of the q range [``q_min``, ``q_max``] nm⁻¹
        from the per-frame sums of ``qds`` with the ``e_spectrum`` parameters. With
        ``q_range_seed`` a content seed is the one of a cook whose q range is this one
        (:meth:`content_seed`), so a range of :mod:`eqegs_repo.cooking.q_resolved` gives the
        numbers of ``cook(q_min=..., q_max=...)``."""
        ep = self.params["e_spectrum"]
        with self.params.blame("q_range.q_min", "q_range.q_max", "e_spectrum", "sp_param"):
            spectra = es.energy_spectra(
                qds["forward_sample"].values, qds["forward_sample"].values, qds["intensity"].values,
                qds["variance"].values, qds["q"].values, calibration.angle_factors, calibration.velocity,
                q_min=q_min, q_max=q_max, v0_offset=calibration.v0_offset,
                start_cut_frames=calibration.start_cut_frames, turnaround_cut_frac=ep["turnaround_cut_frac"],
                turnaround_guard_frames=ep["turnaround_guard_frames"], rebin_factor=ep["rebin_factor"],
                binning=ep["binning"], bin_pixels=qds["npix"].values)
        with self.params.blame("e_spectrum.n_mc"):
            limits.check_size(limits.monte_carlo_bytes(ep["n_mc"], spectra.grid.n_points),
                              "the Monte-Carlo resamples (n_mc x energy points)")
        if ep["seed"] is not None:
            seed, seed_source = ep["seed"], "record"
        else:
            seed, seed_source = self.content_seed((q_min, q_max) if q_range_seed else None), "content"
        with self.params.blame("e_spectrum"):
            isf = es.isf_from_spectra(spectra, bg_fit_enabled=ep["bg_fit_enabled"], bg_n_points=ep["bg_n_points"],
                                      relax_bg_coeff=ep["relax_bg_coeff"], isf_error_threshold=ep["isf_error_threshold"],
                                      n_mc=ep["n_mc"], mc_noise=ep["mc_noise"], seed=seed,
                                      isf_normalisation=ep["isf_normalisation"], fit_model=ep["fit_model"])
        return spectra, isf, seed_source
