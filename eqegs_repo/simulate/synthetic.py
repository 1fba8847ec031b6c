"""Synthetic E-QEGS data with known ground truth (docs/synthetic.md,
docs/physics.md#forward-model).

:func:`write_tree` writes a whole ``<base_dir>/UserData/<account>/EQEGS`` tree: several
proposals, samples ``S001, S002, …`` whose frame count differs between proposals, one background
("scattering noise") run per proposal named :data:`BACKGROUND_SAMPLE_ID` (``S000_noise``), and an
empty ``download/`` folder per proposal.  :func:`write_sample` writes one sample folder.  The
ground truth goes next to the tree, never inside a sample folder:
``<base_dir>/truth/<account>/<proposal>/<sample>.json`` (scalars, parameters) and ``.npz``
(arrays); read it back with :func:`load_truth`.

The parameters and size presets are :mod:`eqegs_repo.simulate.parameters` (their names are
also reachable here). Physics lives in :mod:`eqegs_repo.simulate`; this module draws noise
with a seeded PCG64 generator and writes files (frames streamed in blocks into
``np.lib.format.open_memmap`` files, so even the 4.6 GB full preset needs little memory).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eqegs_repo.cooking import progress
from eqegs_repo.errors import BadInput
from eqegs_repo.io.formats.hdf5 import FILE_NAME
from eqegs_repo.io.layout import TreeLayout
from eqegs_repo.kernels import rules
from eqegs_repo.kernels.physics import q_from_two_theta, two_theta_from_radius
from eqegs_repo.kernels.sensors import coverage
from eqegs_repo.simulate import image
from eqegs_repo.simulate.run_files import FORMATS, check_format, write_files  # noqa: F401 - FORMATS: the face
from eqegs_repo.simulate.parameters import (  # noqa: F401 - the face of synthetic trees
    PRESETS,
    Preset,
    SyntheticParams,
    preset_params,
    spice_mappings,
    suggested_boxes,
)

SCHEMA_VERSION = 1
BACKGROUND_SAMPLE_ID = "S000_noise"
"""Sample ID of each proposal's background ("scattering noise") run: no sample, same beam."""
DEFAULT_ACCOUNT = "u0000000"
DEFAULT_PROPOSALS = ("2025A1234", "2025B5678")
TAU_FACTORS = (1.0, 0.5, 2.0, 0.7, 1.4)
"""Sample k of a proposal (k = 1, 2, …) gets τ₀ × TAU_FACTORS[(k − 1) % 5]: a 'temperature series'."""
_START = _dt.datetime(2025, 4, 10, 9, 0, 0, tzinfo=_dt.timezone.utc)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def _iso(t: _dt.datetime) -> str:
    return t.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _exposure_s(params: SyntheticParams) -> float:
    return params.trains_integrated * params.n_frames / params.frame_rate_hz


def _atomic_json(path: Path, payload: dict, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _marker(params: SyntheticParams, run: str, seed: int, start_time: str | None, comment: str | None) -> dict:
    """Content of ``train_integrated.json`` for one run."""
    try:
        began = _dt.datetime.fromisoformat(start_time.replace("Z", "+00:00")) if start_time else _START
    except ValueError:
        raise BadInput(f"start_time must be an ISO 8601 time such as 2025-04-10T09:00:00Z, got {start_time!r}") from None
    if began.tzinfo is None:
        began = began.replace(tzinfo=_dt.timezone.utc)
    return {
        "n_frames": int(params.n_frames),
        "n_sensors": int(params.sensor_layout.n_sensors),
        "sensor_shape": list(params.sensor_layout.sensor_shape),
        "dtype": np.dtype(params.dtype).name,
        "trains_integrated": int(params.trains_integrated),
        "exposure_s": round(_exposure_s(params), 3),
        "frame_rate_hz": float(params.frame_rate_hz),
        "start_time": _iso(began),
        "end_time": _iso(began + _dt.timedelta(seconds=_exposure_s(params))),
        "comment": comment or f"synthetic {run} (eqegs_repo.simulate.synthetic, seed {seed})",
    }


def write_sample(
    path: str | os.PathLike,
    params: SyntheticParams,
    seed: int,
    background: bool = False,
    *,
    truth_path: str | os.PathLike | None = None,
    overwrite: bool = False,
    block_frames: int | None = None,
    start_time: str | None = None,
    comment: str | None = None,
    truth_extra: dict | None = None,
    format: str = "npy",
    compression: str = "zstd",
    stacked: bool = False,
    json_marker: bool = True,
    models: dict | None = None,
) -> dict:
    """Write one sample folder (marker, ``sensor_<k>.npy``, ``velocity.npy``) at ``path``.

    ``format="hdf5"`` writes ``train_integrated.h5`` instead of the ``.npy`` files
    (docs/layout.md#hdf5): the counts compressed with ``compression`` (``"zstd"``, ``"lz4"``,
    ``"bitshuffle"``, ``"gzip"`` or ``"none"``), one dataset per sensor or, with ``stacked``,
    one ``counts`` dataset; the marker's fields as the file's attributes and, unless
    ``json_marker`` is false, in ``train_integrated.json`` too. The counts are the same as
    with ``format="npy"`` for the same seed.

    ``background=True`` writes the background ("scattering noise") run: same beam and drive,
    no sample, flux and dark scaled by 1/k (``params.background_scale``).  ``seed`` fixes every
    random draw (numpy PCG64 streams derived from (seed, run kind)); the output does not depend
    on ``block_frames`` (frames per streamed block; default keeps blocks near 4 M pixels).
    The folder is built under a temporary name and moved into place; an existing ``path``
    raises FileExistsError unless ``overwrite``.  ``truth_path`` (a path without suffix, or
    ending in ``.json``) receives the truth ``.json`` + ``.npz``; it must lie outside ``path``.
    ``truth_extra`` entries are added to the truth record.  ``start_time`` (ISO 8601 UTC) and
    ``comment`` go into the marker.  ``models``: see :func:`write_tree`.  Returns the truth
    record (dict, JSON-friendly).
    """
    path = Path(path)
    run = "background" if background else "sample"
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if truth_path is not None:
        truth_path = Path(truth_path)
        if truth_path.suffix == ".json":
            truth_path = truth_path.with_suffix("")
        if path.resolve() in truth_path.resolve().parents:
            raise BadInput(f"truth_path {truth_path} lies inside the sample folder {path}; keep the truth outside")
        for existing in (truth_path.with_suffix(".json"), truth_path.with_suffix(".npz")):
            if existing.exists() and not overwrite:
                raise FileExistsError(f"{existing} exists; pass overwrite=True to replace it")
    check_format(format, compression)
    marker = _marker(params, run, seed, start_time, comment)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        model = write_files(tmp, params, seed, run, marker, block_frames, shown=path, format=format,
                             compression=compression, stacked=stacked, json_marker=json_marker, models=models)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    truth, arrays = _truth(params, seed, run, model)
    truth.update(truth_extra or {})
    if truth_path is not None:
        _write_truth(truth_path, truth, arrays, overwrite)
    return truth


def grown_params(params: SyntheticParams, trains: int) -> SyntheticParams:
    """``params`` of a run integrated over ``trains`` trains instead of
    ``params.trains_integrated``: flux and dark (counts per frame) scale with the trains."""
    if isinstance(trains, bool) or not isinstance(trains, (int, np.integer)) or trains < 1:
        raise BadInput(f"trains must be a whole number of trains >= 1, got {trains!r}")
    ratio = int(trains) / params.trains_integrated
    return dataclasses.replace(params, trains_integrated=int(trains), flux=params.flux * ratio,
                               dark=params.dark * ratio)


def grow_sample(
    path: str | os.PathLike,
    params: SyntheticParams,
    seed: int,
    trains: int,
    background: bool = False,
    *,
    in_place: bool = False,
    block_frames: int | None = None,
    start_time: str | None = None,
    comment: str | None = None,
) -> SyntheticParams:
    """Write the sample at ``path`` (written before with ``params`` and ``seed``) again as
    integrated over ``trains`` trains: counts scale with the trains (:func:`grown_params`), the
    marker's ``trains_integrated``, ``exposure_s`` and ``end_time`` follow -- a measurement that
    goes on, as the train-integration app rewrites a sample's files. By default the folder is
    written beside and renamed into place (as :func:`write_sample`); ``in_place=True`` rewrites
    each file where it is, the marker last (a reader may then see files of two integrations: what
    watch's torn-read check is for). Returns the grown params (for the truth: τ, f_q unchanged)."""
    path = Path(path)
    grown = grown_params(params, trains)
    if not (path / TreeLayout().marker).exists() and not (path / FILE_NAME).exists():
        raise BadInput(f"grow_sample: {path} holds no sample (no {TreeLayout().marker} or {FILE_NAME}); write it with "
                       "write_sample first")
    format = "hdf5" if (path / FILE_NAME).exists() else "npy"  # the sample's own format (default compression)
    if in_place:
        run = "background" if background else "sample"
        write_files(path, grown, seed, run, _marker(grown, run, seed, start_time, comment), block_frames, shown=path,
                     format=format)
    else:
        write_sample(path, grown, seed, background, overwrite=True, block_frames=block_frames,
                     start_time=start_time, comment=comment, format=format)
    return grown


def _truth(params: SyntheticParams, seed: int, run: str, model: image.ImageModel) -> tuple[dict, dict]:
    """Truth record (JSON) and arrays (npz) of one run."""
    dyn = params.dynamics()
    q = model.q_nodes
    record = {
        "schema_version": SCHEMA_VERSION,
        "run": run,
        "seed": int(seed),
        "centre_xy": list(params.centre_xy),
        "distance_mm": params.distance_mm,
        "wavelength_nm": params.wavelength_nm,
        "pixel_mm": params.pixel_mm,
        "analyser": {"thickness": params.analyser_thickness, "fwhm_nev": params.analyser_fwhm_nev},
        "source": params.source().to_mapping(),
        "dynamics": dyn.to_mapping() if run == "sample" else None,
        "flux": params.flux / (1.0 if run == "sample" else params.background_scale),
        "background_scale_k": params.background_scale,
        "subtraction_scale": params.subtraction_scale(),
        "forward_counts_per_frame": params.flux * params.direct_beam_counts
        * (params.sample_transmission if run == "sample" else 1.0 / params.background_scale),
        "suggested": suggested_boxes(params),
        "spice": spice_mappings(params),
        "params": params.to_mapping(),
    }
    arrays = {
        "velocity": model.velocity,
        "flux_per_frame": model.flux_per_frame,
        "t0": model.t0,
        "q": q,
        "source_positions_mm_s": params.source().positions_mm_s,
        "source_weights": params.source().weights,
    }
    if run == "sample":
        arrays.update(tau_ns=dyn.tau(q), f_q=dyn.nonergodicity(q), tq=model.tq_nodes)
    return record, arrays


def _write_truth(stem: Path, record: dict, arrays: dict, overwrite: bool) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    npz = stem.with_suffix(".npz")
    if npz.exists() and not overwrite:
        raise FileExistsError(f"{npz} exists; pass overwrite=True to replace it")
    tmp = npz.with_name(f".{npz.stem}.partial-{os.getpid()}.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, npz)
    _atomic_json(stem.with_suffix(".json"), record, overwrite)


def truth_stem(base_dir: str | os.PathLike, account: str, proposal: str, sample: str) -> Path:
    """``<base_dir>/truth/<account>/<proposal>/<sample>`` (add ``.json`` / ``.npz``)."""
    return Path(base_dir) / "truth" / account / proposal / sample


def eqegs_root(base_dir: str | os.PathLike, account: str = DEFAULT_ACCOUNT) -> Path:
    """``<base_dir>/UserData/<account>/EQEGS``."""
    return Path(base_dir) / "UserData" / account / "EQEGS"


@dataclass(frozen=True)
class SyntheticTree:
    """What :func:`write_tree` wrote: the EQEGS root, the truth folder and the sample IDs."""

    base_dir: Path
    account: str
    root: Path
    truth_dir: Path
    samples: dict  # proposal -> tuple of sample IDs (background first)
    background_id: str
    preset: str
    seed: int

    def url(self) -> str:
        """Repository URL pattern for this tree."""
        return f"{self.root}/{{proposal}}/{{sample}}"


def _sample_seed(seed: int, proposal_index: int, sample_index: int) -> int:
    state = np.random.SeedSequence([int(seed), proposal_index, sample_index]).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def write_tree(
    base_dir: str | os.PathLike,
    account: str = DEFAULT_ACCOUNT,
    proposals: tuple[str, ...] = DEFAULT_PROPOSALS,
    preset: str = "tiny",
    seed: int = 0,
    samples_per_proposal: int | tuple[int, ...] = (3, 2),
    background_id: str = BACKGROUND_SAMPLE_ID,
    overwrite: bool = False,
    format: str = "npy",
    compression: str = "zstd",
    models: dict | None = None,
    **overrides,
) -> SyntheticTree:
    """Write ``<base_dir>/UserData/<account>/EQEGS/<proposal>/<sample>/…`` plus the truth.

    Proposal i gets ``PRESETS[preset].frame_counts[i % n]`` frames (so proposals differ), a
    background run ``background_id`` and samples ``S001…`` (``samples_per_proposal``: an int or
    one int per proposal) whose τ₀ follows :data:`TAU_FACTORS`; all runs of a proposal share the
    frame count and velocity cycle.  Each proposal also gets an empty ``download/`` folder.
    ``overrides`` change SyntheticParams fields for every run.  Sample seeds derive from
    ``seed`` and (proposal index, sample index) and are stored in the truth. ``format`` and
    ``compression``: the raw-data format of every run, as for :func:`write_sample` (the same
    counts in either format). ``models``: a dict that keeps the expected-count models
    (:func:`eqegs_repo.simulate.run_files.image_model`); a noise-free copy of the tree written
    with the same dict builds none again.
    """
    proposals = tuple(proposals)
    if not proposals:
        raise BadInput("write_tree: proposals must name at least one proposal")
    counts = (samples_per_proposal,) * len(proposals) if isinstance(samples_per_proposal, int) else tuple(samples_per_proposal)
    if len(counts) < len(proposals) or any(int(c) < 1 for c in counts[: len(proposals)]):
        raise BadInput(
            f"write_tree: samples_per_proposal must be an int >= 1 or one per proposal ({len(proposals)}), "
            f"got {samples_per_proposal!r}"
        )
    check_format(format, compression)
    root = eqegs_root(base_dir, account)
    files = TreeLayout()
    written = {}
    clock = _START
    bar = progress.bar(sum(int(c) + 1 for c in counts[: len(proposals)]), "writing runs", "run")
    for p_index, proposal in enumerate(proposals):
        proposal_dir = root / proposal
        (proposal_dir / files.download_dir).mkdir(parents=True, exist_ok=True)
        base = preset_params(preset, p_index, **overrides)
        ids = [background_id] + [f"S{k:03d}" for k in range(1, int(counts[p_index]) + 1)]
        for s_index, sample in enumerate(ids):
            params = base
            if s_index > 0:
                params = dataclasses.replace(base, tau0_ns=base.tau0_ns * TAU_FACTORS[(s_index - 1) % len(TAU_FACTORS)])
            sample_seed = _sample_seed(seed, p_index, s_index)
            kind = "scattering noise" if s_index == 0 else "sample"
            write_sample(
                proposal_dir / sample,
                params,
                sample_seed,
                background=s_index == 0,
                truth_path=truth_stem(base_dir, account, proposal, sample),
                overwrite=overwrite,
                format=format,
                compression=compression,
                models=models,
                start_time=_iso(clock),
                comment=f"synthetic {kind} {sample} (eqegs_repo.simulate.synthetic preset {preset}, tree seed {seed})",
                truth_extra={
                    "tree_seed": int(seed),
                    "preset": preset,
                    "account": account,
                    "proposal": proposal,
                    "sample": sample,
                    "background_sample": background_id,
                },
            )
            clock += _dt.timedelta(seconds=_exposure_s(params) + 120.0)
            bar.update()
        written[proposal] = tuple(ids)
        clock += _dt.timedelta(days=30)
    bar.close()
    return SyntheticTree(Path(base_dir), account, root, Path(base_dir) / "truth" / account, written, background_id, preset, int(seed))


@dataclass(frozen=True)
class SampleTruth:
    """Ground truth of one synthetic run: ``record`` (the JSON) and ``arrays`` (the npz)."""

    record: dict
    arrays: dict

    @property
    def params(self) -> SyntheticParams:
        return SyntheticParams.from_mapping(self.record["params"])

    @property
    def dynamics(self) -> image.Dynamics:
        """The sample's dynamics; raises BadInput for a background run."""
        if self.record["dynamics"] is None:
            raise BadInput(f"run {self.record.get('sample', '')!r} is a background run: it has no sample dynamics")
        return self.params.dynamics()

    def isf(self, q: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
        """True F(q,t)/S(q) = f_q·exp(−(t/τ_q)^β)."""
        return self.dynamics.isf(q, t_ns)

    def isf_in_q_range(self, q_min: float, q_max: float, t_ns: np.ndarray) -> np.ndarray:
        """The ISF of the scattering summed over all recorded pixels with q_min ≤ q ≤ q_max.

        Each pixel contributes f_q·exp(−(t/τ_q)^β) with weight ΔΩ·P·S(q) (its share of the
        quasi-elastic counts), so this is what an ideal inverse step recovers for that q range.
        Returns an array of the shape of ``t_ns``.  The range must pass
        :func:`eqegs_repo.kernels.rules.q_range_problems` (0 ≤ q_min < q_max, nm⁻¹).
        """
        problems = rules.q_range_problems(q_min, q_max)
        if problems:
            raise BadInput("; ".join(problems))
        params = self.params
        geometry = params.geometry()
        inside = (geometry.q >= q_min) & (geometry.q <= q_max)
        return self._isf_of_pixels(params, geometry, inside, t_ns,
                                   f"no recorded pixel has {q_min} <= q <= {q_max} nm⁻¹")

    def isf_of_bins(self, q_min: float, q_max: float, t_ns: np.ndarray, *, centre_xy: tuple[float, float],
                    bin_px: float, box_halfwidth: float = 0.0) -> np.ndarray:
        """The ISF (as :meth:`isf_in_q_range`) of the recorded pixels that a radial integration
        around ``centre_xy`` (x, y px: the centre a result found, not the true one) with bins of
        ``bin_px`` px puts into the bins whose centre q lies in [``q_min``, ``q_max``] (nm⁻¹),
        outside the direct-beam box of half-width ``box_halfwidth`` px: the pixels a result of
        that range summed, each with its true q (docs/e-spectrum-and-isf.md#the-q-of-a-result)."""
        problems = rules.q_range_problems(q_min, q_max)
        if problems:
            raise BadInput("; ".join(problems))
        params = self.params
        geometry = params.geometry()
        dx, dy = geometry.x - float(centre_xy[0]), geometry.y - float(centre_xy[1])
        bin_centre = (np.floor(np.hypot(dx, dy) / float(bin_px)) + 0.5) * float(bin_px)
        q_bin = q_from_two_theta(two_theta_from_radius(bin_centre, pixel_mm=geometry.pixel_mm,
                                                       distance_mm=geometry.distance_mm),
                                 wavelength_nm=geometry.wavelength_nm)
        outside_box = (np.abs(dx) > box_halfwidth) | (np.abs(dy) > box_halfwidth)
        inside = (q_bin >= q_min) & (q_bin <= q_max) & outside_box
        return self._isf_of_pixels(params, geometry, inside, t_ns,
                                   f"no recorded pixel falls in a bin of {q_min} <= q <= {q_max} nm⁻¹")

    def _isf_of_pixels(self, params, geometry, inside, t_ns, empty):
        """The ISF at ``t_ns`` of the recorded pixels of ``inside`` (H, W) bool, each weighted by its
        share ΔΩ·P·S(q) of the quasi-elastic counts (``params``: :attr:`params`, ``geometry``: its
        pixel geometry, both made once by the caller); BadInput ``empty`` when there is none."""
        inside = inside & (coverage(params.sensor_layout) > 0)
        if not inside.any():
            raise BadInput(empty)
        polar = image.polarisation_factor(geometry.two_theta, geometry.phi_deg, params.polarisation_deg)
        weights = (geometry.solid_angle * polar * params.scatterers().structure(geometry.q))[inside]
        t = np.asarray(t_ns, dtype=np.float64)
        per_pixel = self.dynamics.isf(geometry.q[inside][:, None], t.ravel()[None, :])
        return (weights @ per_pixel / weights.sum()).reshape(t.shape)


def load_truth(base_dir: str | os.PathLike, account: str, proposal: str, sample: str) -> SampleTruth:
    """Read the truth written by :func:`write_tree` for one sample (or its background)."""
    stem = truth_stem(base_dir, account, proposal, sample)
    json_path, npz_path = stem.with_suffix(".json"), stem.with_suffix(".npz")
    if not json_path.exists():
        raise FileNotFoundError(f"no synthetic truth for {proposal}/{sample}: {json_path} does not exist")
    record = json.loads(json_path.read_text())
    if record.get("schema_version") != SCHEMA_VERSION:
        raise BadInput(f"{json_path}: schema_version {record.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    with np.load(npz_path) as data:
        arrays = {name: data[name] for name in data.files}
    return SampleTruth(record, arrays)
