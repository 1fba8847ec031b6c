"""Velocity and angle calibrations: built-in kinds from spice, or the app's calibration folder.

Which calibration a sample uses comes from its ``calibration`` record: ``velocity_number``,
``angle_number`` (the app's data_table.csv columns) and ``folder``.

**No folder** (``calibration.folder`` null): the built-in kinds of the ``velocity_calibration``
and ``angle_calibration`` records (:func:`eqegs_repo.kernels.e_spectrum.calibrated_velocity`,
:func:`~eqegs_repo.kernels.e_spectrum.angle_factor`). Each record defines one calibration number
(its ``number`` field), which must equal the number the ``calibration`` record asks for.

**A folder** (the app's "Directory of calibration files"): ``calibration_velocity.py``,
``calibration_angle.py``, ``sp_param.json`` and optionally ``data_table.csv``. Every file read
must have the SHA-256 recorded in ``calibration.files`` (seeding ``calibration`` with a folder
records them); a file that changed since is refused. The two ``.py`` files are executed as
Python modules and must define a mapping ``CALIBRATIONS`` from calibration number to function:

``calibration_velocity.py``::

    import numpy as np

    def measured_waveform(measured, n_frames):
        # measured: (n_frames,) float64, the sample's velocity.npy (the input velocity waveform)
        return 1.0 * measured            # (n_frames,) Doppler velocity in mm/s

    CALIBRATIONS = {1: measured_waveform}

``calibration_angle.py``::

    import numpy as np

    CALIBRATIONS = {0: lambda two_theta: np.ones_like(two_theta),   # two_theta: rad, (bins,)
                    1: lambda two_theta: np.cos(two_theta)}         # -> energy factor g, (bins,)

**Trust.** Whoever can write a ``.spice`` folder can name any folder in ``calibration.folder``
and record its hashes, so the ``.py`` files run only from folders the user allowed outside spice:
``Repository(..., trusted_calibration_dirs=[...])`` or the environment variable
``EQEGS_TRUSTED_CALIBRATION_DIRS`` (folders separated by ``os.pathsep``, ``:`` on Linux). A
folder inside one of them (after resolving links) is trusted; any other is refused before
anything in it is opened (docs/robustness.md). Each file is then opened once
(:func:`~eqegs_repo.io.calibration_files.open_calibration_file`): only a regular file of at
most 16 MiB is read (a FIFO, socket or device is refused naming it), the real path of the
*open* file must be inside a trusted folder (a link to elsewhere, or one changed after the
check, is refused), and what is hashed, run and copied is the bytes of that open file. The
cache key of the E-spectrum step holds the SHA-256 of the folder's files as they are now, so a
changed file is never served from the cache; hashing them is given :data:`FINGERPRINT_TIMEOUT_S`
(a folder on a hung mount is reported, not waited for), and a folder that cannot be hashed is
:class:`CalibrationFolderProblem`, the sample's ``problem`` in ``table()`` and ``eqegs ls``.

A velocity function returns v_f in mm/s including any offset (v₀ is not applied again); an angle
function returns the energy-scale factor g(2θ) of each q bin. ``sp_param.json`` holds
``{"START_CUT_FRAMES": 5}``; when present it gives the frames cut at the start, and a different
value in an explicit ``sp_param`` record is refused as ambiguous.
"""
import hashlib
import json
import os
import threading
from dataclasses import dataclass

import fsspec
import numpy as np

from eqegs_repo import snapshot
from eqegs_repo.errors import BadInput, BadSample
from eqegs_repo.io.calibration_files import open_calibration_file, protocol_of
from eqegs_repo.kernels import e_spectrum as es

VELOCITY_FILE = "calibration_velocity.py"
ANGLE_FILE = "calibration_angle.py"
SP_PARAM_FILE = "sp_param.json"
DATA_TABLE_FILE = "data_table.csv"
FILES = (VELOCITY_FILE, ANGLE_FILE, SP_PARAM_FILE, DATA_TABLE_FILE)
TRUST_VARIABLE = "EQEGS_TRUSTED_CALIBRATION_DIRS"
"""Environment variable: folders (``os.pathsep``-separated) whose calibration code may run."""


def _location(url):
    """``(protocol, path)`` of a folder URL, links resolved for local folders."""
    fs, path = fsspec.core.url_to_fs(str(url))
    protocol = protocol_of(fs)
    if protocol == "file":
        return "file", os.path.realpath(path)
    return protocol, path.rstrip("/")


def trusted_folders(setting=None):
    """The folders whose calibration code may run: ``setting`` (a Repository's
    ``trusted_calibration_dirs``) and those of ``$EQEGS_TRUSTED_CALIBRATION_DIRS``."""
    folders = [str(f) for f in (setting or ())]
    folders += [f for f in os.environ.get(TRUST_VARIABLE, "").split(os.pathsep) if f.strip()]
    return folders


def _inside(protocol, path, trusted):
    """Whether the resolved ``path`` on ``protocol`` is one of the ``trusted`` folders or inside
    one (``path`` itself is not resolved again)."""
    for entry in trusted:
        other, base = _location(entry)
        if other == protocol and (path == base or path.startswith(base.rstrip("/") + "/")):
            return True
    return False


def is_trusted(folder, trusted):
    """Whether ``folder`` (links resolved) is one of the ``trusted`` folders or inside one."""
    return _inside(*_location(folder), trusted)


@dataclass(frozen=True)
class Calibration:
    """What the E-spectrum step needs: velocity v_f (mm/s, (frames,)), the offset v₀ still to
    subtract (mm/s), g(2θ) per q bin, START_CUT_FRAMES, and a description of each source."""

    velocity: np.ndarray
    v0_offset: float
    angle_factors: np.ndarray
    start_cut_frames: int
    description: dict


class CalibrationFolderProblem(BadInput):
    """A calibration folder whose files cannot be used: not trusted, not a regular file, too
    large, unreadable or not answering. Unlike other unresolved inputs it is the sample's
    ``problem`` in ``table()`` and ``eqegs ls`` (the cache state cannot be known without it)."""


class CalibrationFolder:
    """The app's calibration folder, each file checked against the hash recorded in spice.

    Every file is opened once (:func:`~eqegs_repo.io.calibration_files.open_calibration_file`:
    regular files of a bounded size only); the real path of the open file must be inside one of
    the ``trusted`` folders before a byte is read, and what runs, is hashed or is copied is the
    bytes of that same open file, so changing a link in between changes nothing."""

    def __init__(self, folder, recorded, where, trusted=()):
        self.folder = str(folder).rstrip("/")
        self.recorded = dict(recorded or {})
        self.where = where
        self.trusted = list(trusted)
        self.fs, self.path = fsspec.core.url_to_fs(self.folder)
        if not self.fs.isdir(self.path):
            raise BadInput(f"calibration.folder = {self.folder!r} ({where}) does not exist or is "
                           "not a folder")

    def exists(self, name):
        return self.fs.exists(f"{self.path}/{name}")

    def _untrusted(self, name=None, found=None):
        allowed = ", ".join(self.trusted) or "none"
        there = "" if found is None else f" (the file opened is {found})"
        what = "its files were not read" if name is None else f"{name} was not read and nothing in it was run"
        return CalibrationFolderProblem(
            f"calibration.folder = {self.folder!r} ({self.where}) is not a folder you allowed to run "
            f"calibration code from (allowed: {allowed}){there}; {what}. Allow it with "
            f"${TRUST_VARIABLE}={self.folder} or Repository(..., trusted_calibration_dirs=[...]) "
            "(docs/robustness.md)")

    def _check_folder(self, name=None):
        """Refuse a folder outside the trusted ones before anything in it is looked at."""
        if not is_trusted(self.folder, self.trusted):
            raise self._untrusted(name)

    def payload(self, name):
        """The bytes of ``name``, read from the one open file whose real path was checked
        against the trusted folders (not checked against the recorded hash)."""
        self._check_folder(name)
        path = f"{self.path}/{name}"
        try:
            with open_calibration_file(self.fs, path) as opened:
                if not _inside(opened.protocol, opened.real_path, self.trusted):
                    raise self._untrusted(name, opened.real_path)
                return opened.read()
        except FileNotFoundError:
            raise BadInput(f"calibration folder {self.folder} has no {name} (calibration.folder "
                           f"from {self.where})") from None
        except CalibrationFolderProblem:
            raise
        except BadInput as exc:
            raise CalibrationFolderProblem(f"{exc} (calibration.folder from {self.where})") from None
        except OSError as exc:
            raise CalibrationFolderProblem(f"{path}: cannot be read ({exc.strerror or exc}; "
                                           f"calibration.folder from {self.where})") from None

    def read(self, name):
        """The bytes of ``name`` (:meth:`payload`), refused unless its SHA-256 equals the
        recorded one."""
        payload = self.payload(name)
        found = hashlib.sha256(payload).hexdigest()
        expected = self.recorded.get(name)
        if expected is None:
            raise BadInput(f"calibration.files ({self.where}) records no SHA-256 for {name}; "
                           "update the calibration record with the folder again to record the "
                           "files' hashes")
        if found != expected:
            raise BadInput(f"calibration file {self.path}/{name} changed since it was recorded: "
                           f"calibration.files[{name!r}] = {expected[:12]}... ({self.where}) but the "
                           f"file's SHA-256 is {found[:12]}...; check the file, then update the "
                           "calibration record with the folder again")
        return payload

    def calibrations(self, name):
        """The ``CALIBRATIONS`` mapping of a calibration ``.py`` file; refused unless the file
        opened is in a trusted folder (see the module docstring)."""
        source = self.read(name).decode("utf-8")
        namespace = {"__name__": f"eqegs_calibration_{name[:-3]}", "__file__": f"{self.path}/{name}"}
        try:
            exec(compile(source, f"{self.path}/{name}", "exec"), namespace)
        except Exception as exc:
            raise BadInput(f"{self.path}/{name} failed to run: {exc!r}") from None
        table = namespace.get("CALIBRATIONS")
        if not isinstance(table, dict):
            raise BadInput(f"{self.path}/{name} must define CALIBRATIONS = {{number: function}}; "
                           f"found {type(table).__name__}")
        return table

    def function(self, table, name, number):
        """The function of calibration ``number`` in the ``CALIBRATIONS`` of file ``name``."""
        if number not in table:
            raise BadInput(f"calibration number {number} is not defined by {self.path}/{name}, which "
                           f"defines numbers {sorted(table)}")
        return table[number]

    def start_cut_frames(self):
        """START_CUT_FRAMES of sp_param.json, or None when the folder has no sp_param.json."""
        if not self.exists(SP_PARAM_FILE):
            return None
        payload = self.read(SP_PARAM_FILE)
        try:
            value = json.loads(payload)["START_CUT_FRAMES"]
        except (ValueError, KeyError, TypeError):
            raise BadInput(f"{self.path}/{SP_PARAM_FILE}: expected a JSON object with an integer "
                           "START_CUT_FRAMES") from None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadInput(f"{self.path}/{SP_PARAM_FILE}: START_CUT_FRAMES must be an integer >= 0, "
                           f"found {value!r}")
        return value

    def files(self):
        """Names of the calibration files present (for copies next to the results)."""
        return [n for n in FILES if self.exists(n)]

    def current_hashes(self):
        """``{file name: SHA-256}`` of the calibration files as they are now (for cache keys):
        trusted folders only, regular files of a bounded size only."""
        self._check_folder()
        return {name: hashlib.sha256(self.payload(name)).hexdigest() for name in self.files()}

    def copies(self):
        """``{name: bytes}`` of the recorded files present, each checked against its hash."""
        self._check_folder()
        return {name: self.read(name) for name in self.files() if name in self.recorded}


FINGERPRINT_TIMEOUT_S = 20.0
"""How long (seconds) hashing a calibration folder for a cache key may take before the folder is
reported as not answering (a hung network mount); the read goes on in the background."""
_not_answering = {}  # folder -> the thread still waiting for it


def folder_fingerprint(params, trusted=()):
    """The SHA-256 of the calibration folder's files now (``{}`` without a folder): part of the
    E-spectrum cache key, so that a changed file is cooked again, never served stale.

    ``trusted``: the folders whose calibration files may be read (:func:`trusted_folders`);
    another folder is refused before anything in it is opened. Raises
    :class:`CalibrationFolderProblem` when the files cannot be hashed within
    :data:`FINGERPRINT_TIMEOUT_S` (a folder still not answering is refused at once)."""
    cal = params["calibration"]
    if not cal["folder"]:
        return {}
    folder = str(cal["folder"])
    snapshot.note(f"calibration folder {folder}")  # a listing keeps no row that hashed it
    waiting = _not_answering.pop(folder, None)
    if waiting is not None and waiting.is_alive():
        _not_answering[folder] = waiting
        raise CalibrationFolderProblem(f"calibration folder {folder} ({params.source('calibration', 'folder')}) "
                                       "has still not answered an earlier read; its files were not hashed")
    outcome = {}

    def hash_files():
        try:
            outcome["hashes"] = CalibrationFolder(folder, cal["files"], params.source("calibration", "folder"),
                                                  trusted).current_hashes()
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=hash_files, name=f"hash {folder}", daemon=True)
    worker.start()
    worker.join(FINGERPRINT_TIMEOUT_S)
    if worker.is_alive():
        _not_answering[folder] = worker
        raise CalibrationFolderProblem(f"calibration folder {folder} ({params.source('calibration', 'folder')}) "
                                       f"did not answer within {FINGERPRINT_TIMEOUT_S:g} s while its files "
                                       "were hashed (a hung network mount?)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["hashes"]


def _checked(values, shape, what):
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInput(f"{what} returned {type(values).__name__}; expected numbers of shape {shape}") from None
    if array.shape != shape or not np.isfinite(array).all():
        raise BadInput(f"{what} must return finite numbers of shape {shape}, returned shape {array.shape}"
                       + ("" if array.shape != shape else " with NaN/inf"))
    return array


def _check_sweep(velocity, measured, measured_path, source):
    """Refuse a calibrated ``velocity`` (frames,) mm/s that is one value for every frame (no
    energy sweep): a BadSample naming ``measured_path`` when the calibration ``source`` (a
    description) computed it from the ``measured`` waveform and that waveform is constant, a
    BadInput naming the calibration otherwise. ``measured`` None: the calibration does not use it."""
    if velocity.size < 2 or np.ptp(velocity) > 0:
        return
    if measured is not None and np.ptp(measured) == 0:
        raise BadSample(f"{measured_path}: all {measured.size} values of the measured drive waveform are "
                        f"{measured[0]:g}; the calibration {source} turns a constant waveform into one "
                        f"velocity ({velocity[0]:g} mm/s) for every frame, so there is no energy sweep; "
                        "expected a waveform that varies over the frames")
    raise BadInput(f"the calibration {source} gives one velocity ({velocity[0]:g} mm/s) for every frame, "
                   "so there is no energy sweep; expected velocities that vary over the frames")


def resolve(params, measured, two_theta, trusted=(), measured_path="velocity.npy"):
    """The :class:`Calibration` for a sample.

    ``params``: :class:`~eqegs_repo.params.effective.StepParameters`; ``measured`` (frames,) the
    sample's velocity.npy (finite values), read from ``measured_path`` (named in messages);
    ``two_theta`` (bins,) rad of the q bins; ``trusted``: the folders whose calibration code may
    run (:func:`trusted_folders`). A calibration that gives one velocity for every frame is
    refused (:func:`_check_sweep`).
    """
    cal = params["calibration"]
    n_frames = int(np.size(measured))
    where = params.source("calibration", "folder")
    if cal["folder"]:
        folder = CalibrationFolder(cal["folder"], cal["files"], where, trusted)
        number = cal["velocity_number"]
        table = folder.calibrations(VELOCITY_FILE)
        with params.blame("calibration.velocity_number"):
            function = folder.function(table, VELOCITY_FILE, number)
        try:
            raw = function(np.asarray(measured, dtype=np.float64).copy(), n_frames)
        except Exception as exc:
            raise BadInput(f"{folder.path}/{VELOCITY_FILE}: calibration {number} failed: {exc!r}") from None
        velocity = _checked(raw, (n_frames,), f"{VELOCITY_FILE} calibration {number}")
        _check_sweep(velocity, measured, measured_path, f"{folder.path}/{VELOCITY_FILE} #{number}")
        angle_number = cal["angle_number"]
        table = folder.calibrations(ANGLE_FILE)
        with params.blame("calibration.angle_number"):
            angle_function = folder.function(table, ANGLE_FILE, angle_number)
        try:
            raw_g = angle_function(np.asarray(two_theta, dtype=np.float64).copy())
        except Exception as exc:
            raise BadInput(f"{folder.path}/{ANGLE_FILE}: calibration {angle_number} failed: {exc!r}") from None
        g = _checked(raw_g, np.shape(two_theta), f"{ANGLE_FILE} calibration {angle_number}")
        start_cut = _start_cut(params, folder.start_cut_frames(), folder.path)
        description = {"velocity": f"{folder.folder}/{VELOCITY_FILE} #{number}",
                       "angle": f"{folder.folder}/{ANGLE_FILE} #{angle_number}",
                       "folder": folder.folder, "files": folder.files()}
        return Calibration(velocity, 0.0, g, start_cut, description)
    vel = params["velocity_calibration"]
    if vel["number"] != cal["velocity_number"]:
        raise BadInput(f"{params.describe('calibration', 'velocity_number')} is not defined: the "
                       f"velocity_calibration in use has {params.describe('velocity_calibration', 'number')}; "
                       "seed a velocity_calibration with that number or set calibration.folder")
    ang = params["angle_calibration"]
    if ang["number"] != cal["angle_number"]:
        raise BadInput(f"{params.describe('calibration', 'angle_number')} is not defined: the "
                       f"angle_calibration in use has {params.describe('angle_calibration', 'number')}; "
                       "seed an angle_calibration with that number or set calibration.folder")
    with params.blame("velocity_calibration"):
        velocity = es.calibrated_velocity(measured, kind=vel["kind"], n_frames=n_frames, v_max=vel["v_max"],
                                          phase_frames=vel["phase_frames"], period_frames=vel["period_frames"],
                                          poly_coeffs=vel["poly_coeffs"], table_mm_s=vel["table_mm_s"])
    _check_sweep(velocity, measured if vel["kind"] == "poly" else None, measured_path,
                 params.describe("velocity_calibration", "kind"))
    with params.blame("angle_calibration"):
        g = es.angle_factor(two_theta, kind=ang["kind"], table=ang["table"])
    description = {"velocity": f"built-in {vel['kind']} #{vel['number']}",
                   "angle": f"built-in {ang['kind']} #{ang['number']}", "folder": None, "files": []}
    return Calibration(velocity, float(vel["v0_offset"]), g, int(params["sp_param"]["start_cut_frames"]),
                       description)


def _start_cut(params, from_file, path):
    value = params["sp_param"]["start_cut_frames"]
    if from_file is None:
        return int(value)
    source = params.source("sp_param", "start_cut_frames")
    if source != "default" and value != from_file:
        raise BadInput(f"{params.describe('sp_param', 'start_cut_frames')} disagrees with "
                       f"START_CUT_FRAMES = {from_file} in {path}/{SP_PARAM_FILE}; erase the "
                       "sp_param record or change the file")
    return int(from_file)
