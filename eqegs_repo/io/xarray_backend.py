"""The ``eqegs`` engine of ``xarray.open_dataset``: a sample folder as its lazy raw dataset.

::

    import xarray as xr
    raw = xr.open_dataset("/UserData/u0000000/EQEGS/2025A1234/S001", engine="eqegs")

gives the dataset of ``sample.raw`` (:func:`eqegs_repo.io.raw.open_raw`): ``counts(sensor,
frame, row, col)`` in the sensor files' dtype and ``velocity(frame)``, with the marker as
``attrs``; nothing but the headers is read until values are asked for. ``chunks=`` (handled by
xarray) gives Dask-backed variables. The engine is registered under the ``xarray.backends``
entry point ``eqegs`` (pyproject.toml); :class:`EqegsBackendEntrypoint` can also be passed as
``engine=`` directly. See docs/layout.md#xarray-open_dataset.
"""
import os

import fsspec
from xarray.backends import BackendEntrypoint

from eqegs_repo.errors import BadInput
from eqegs_repo.io.layout import HDF5_FILE, TreeLayout, read_marker
from eqegs_repo.io.raw import open_raw


def _folder(filename_or_obj, storage_options=None):
    """``(fs, path)`` of a sample folder given as a path, ``os.PathLike`` or fsspec URL."""
    if not isinstance(filename_or_obj, (str, os.PathLike)):
        raise BadInput(f"engine 'eqegs' opens a sample folder given as a path or URL; got "
                       f"{type(filename_or_obj).__name__}")
    fs, path = fsspec.core.url_to_fs(os.fspath(filename_or_obj), **(storage_options or {}))
    return fs, path.rstrip("/")


def open_sample_folder(filename_or_obj, *, drop_variables=None, layout=None, storage_options=None):
    """The lazy raw ``xarray.Dataset`` of one sample folder (see the module docstring).

    ``layout``: a :class:`~eqegs_repo.io.layout.TreeLayout` for other file names;
    ``storage_options``: passed to fsspec for URLs; ``drop_variables``: names among
    ``counts``, ``velocity`` to leave out. Raises :class:`~eqegs_repo.errors.BadSample` naming
    the file when the marker or a raw file is missing or wrong.
    """
    layout = layout or TreeLayout()
    fs, path = _folder(filename_or_obj, storage_options)
    marker = read_marker(fs, layout.marker_path(path))
    ds = open_raw(fs, path, marker, layout)
    if drop_variables is not None:
        names = [drop_variables] if isinstance(drop_variables, str) else list(drop_variables)
        ds = ds.drop_vars([name for name in names if name in ds.variables])
    return ds


class EqegsBackendEntrypoint(BackendEntrypoint):
    """xarray backend ``eqegs``: ``xr.open_dataset(sample_folder, engine="eqegs")``."""

    description = "E-QEGS sample folders (train_integrated.json + the raw run in any registered format) as lazy raw data"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "layout", "storage_options")

    def open_dataset(self, filename_or_obj, *, drop_variables=None, layout=None,
                     storage_options=None):
        return open_sample_folder(filename_or_obj, drop_variables=drop_variables, layout=layout,
                                  storage_options=storage_options)

    def guess_can_open(self, filename_or_obj):
        """True for a local folder holding the marker file (``train_integrated.json``) or an HDF5
        raw file (``train_integrated.h5``, which may hold the marker).

        Only local paths are looked at, so guessing the engine of a remote URL costs no
        request; pass ``engine="eqegs"`` for remote sample folders.
        """
        if not isinstance(filename_or_obj, (str, os.PathLike)):
            return False
        path = os.fspath(filename_or_obj)
        if isinstance(path, bytes) or ("://" in path and not path.startswith("file://")):
            return False
        path = path.removeprefix("file://")
        return any(os.path.isfile(os.path.join(path, name)) for name in (TreeLayout().marker, HDF5_FILE))
