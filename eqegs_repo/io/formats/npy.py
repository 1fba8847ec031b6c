"""The built-in raw-data format: one ``.npy`` file per sensor and one for the drive waveform.

::

    <sample>/train_integrated/sensor_<k>.npy  (frames, rows, cols) counts, k = 0..n_sensors-1
    <sample>/train_integrated/velocity.npy    (frames,) measured drive waveform

(file and folder names from :class:`~eqegs_repo.io.layout.TreeLayout`: ``raw_dir``,
``sensor_file``, ``velocity_file``). :class:`NpyFile` reads a ``.npy`` file's header once and
checks the file's size against it (for local files, the file's identity is taken then, and every
later read is checked against it); reading the frames is that of
:class:`~eqegs_repo.io.formats.binary.BinaryArray` (only the frames asked for; positioned reads,
never a memory map, with read-ahead hints when streaming local files).
"""
import functools
import io
import os
import stat

import numpy as np

from eqegs_repo.errors import BadSample
from eqegs_repo.io.file_identity import FileIdentity
from eqegs_repo.io.formats.binary import BinaryArray
from eqegs_repo.io.layout import check_regular_file, opening, is_local

_MAX_HEADER = 1 << 16
# Header readers by format version, as numpy writes them: 2.0 when the header outgrows 64 KiB,
# 3.0 when it is not latin-1 (UTF-8 field names of a structured dtype, refused later as counts).
# A 3.0 header differs from a 2.0 one only in its text encoding, and numpy has no public reader
# for it: the 2.0 reader parses every 3.0 header whose text is ASCII, i.e. every numeric dtype.
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
    (3, 0): np.lib.format.read_array_header_2_0,
}


class NpyFile(BinaryArray):
    """One ``.npy`` array on a filesystem, read lazily.

    ``shape``/``dtype`` come from the header. :meth:`read` takes a numpy index whose first
    axis is an int, a slice or an integer array and reads only the rows (frames) it needs.
    ``identity`` (a :class:`~eqegs_repo.io.file_identity.FileIdentity`, None for files not on
    the local filesystem) is the file's when its header was read; every later read checks it.
    Instances pickle without open handles.
    """

    def __init__(self, fs, path):
        local = is_local(fs)
        identity = None
        with opening(path, "not a readable .npy file ({exc})"):
            if local:
                flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)  # never waits on a FIFO
                with os.fdopen(os.open(path, flags), "rb") as f:
                    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                        check_regular_file(fs, path)  # refuses it, naming what it is
                    identity = FileIdentity.of(f.fileno())
                    shape, fortran, dtype = _read_header(f)
                    offset = f.tell()
                size = identity.size
            else:
                check_regular_file(fs, path)
                with fs.open(path, "rb") as f:
                    shape, fortran, dtype = _read_header(f)
                    offset = f.tell()
                size = fs.size(path)
        if fortran:
            raise BadSample(f"{path}: Fortran-ordered arrays are not supported; expected C order")
        if dtype.hasobject:
            raise BadSample(f"{path}: object arrays are refused; expected numeric counts, found {dtype}")
        super().__init__(fs, path, offset, shape, dtype, identity=identity)
        expected = self.offset + self.nbytes
        if size < expected:
            raise BadSample(
                f"{path}: truncated: the header says shape {self.shape} of {dtype}, i.e. "
                f"{expected} bytes, but the file has {size} bytes"
            )
        if size > expected:
            raise BadSample(
                f"{path}: {size - expected} bytes after the array: the header says shape {self.shape} "
                f"of {dtype}, i.e. {expected} bytes, but the file has {size} bytes; trailing bytes "
                "mean a different array was meant (a file overwritten in place by a smaller one?)"
            )



def _read_header(f):
    """``(shape, fortran_order, dtype)`` from the ``.npy`` header of the binary file ``f``
    (left at the first byte of the array). Headers are parsed once per process: the files of
    a run, and the runs of a proposal, mostly share theirs."""
    version = np.lib.format.read_magic(f)
    if version not in _HEADER_READERS:
        raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}; "
                         "expected 1.0, 2.0 or 3.0")
    length_bytes = 2 if version == (1, 0) else 4
    length_field = f.read(length_bytes)
    length = int.from_bytes(length_field, "little") if len(length_field) == length_bytes else 0
    header = f.read(min(length, _MAX_HEADER + 1))
    return _parse_header(version, length_field + header)


@functools.lru_cache(maxsize=256)
def _parse_header(version, raw):
    """The numpy reader of ``version`` on the length field and header text ``raw``."""
    return _HEADER_READERS[version](io.BytesIO(raw), max_header_size=_MAX_HEADER)

class NpyFormat:
    """The npy layout as a :class:`~eqegs_repo.io.formats.RawFormat` (registered as ``"npy"``)."""

    name = "npy"

    def guess_can_open(self, fs, folder, names, marker, layout):
        """True when the sample folder holds the raw folder (``train_integrated/``)."""
        return layout.raw_dir in names

    def why_not(self, fs, folder, names, marker, layout):
        """The raw folder is missing (what :meth:`guess_can_open` looks for)."""
        return f"no {layout.raw_dir}/ folder in the sample folder"

    def run_files(self, fs, folder, marker, layout):
        """The sensor files ``sensor_0.npy`` .. and ``velocity.npy``."""
        return ([layout.sensor_path(folder, k) for k in range(marker["n_sensors"])]
                + [layout.velocity_path(folder)])

    def open_frames(self, fs, folder, marker, layout):
        """One :class:`NpyFile` per sensor file, and the velocity file's (headers read)."""
        *sensors, velocity = [NpyFile(fs, path) for path in self.run_files(fs, folder, marker, layout)]
        return sensors, velocity

    def __repr__(self):
        return "<raw-data format npy>"


FORMAT = NpyFormat()
