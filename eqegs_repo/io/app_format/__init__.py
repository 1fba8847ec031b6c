"""The analysis app's step folders on disk, in one place: their names (:mod:`.names`), the text
files (:mod:`.text`), one module per step that writes and reads its folder
(:mod:`.reconstruction`, :mod:`.q_integration`, :mod:`.e_spectrum_and_isf`) and the listing and
reading of result folders (:mod:`.reading`: ``sample.results``). docs/outputs.md describes the
format.

A step's folder format is registered here under the step's name (:func:`register`); a step
declared in :mod:`eqegs_repo.step_table` registers its format from the module that registers
its cooking (docs/architecture.md#adding-a-step). Writing is given an object ``stage`` with
``write(relative path, bytes or str)`` and ``open(relative path)`` (a binary file), the step's
dataset and the ``inputs`` the cooking side gathers for it; reading is given the filesystem, the
folder and the attrs read from its info.json.
"""
from collections.abc import Callable
from dataclasses import dataclass

from eqegs_repo import step_table


@dataclass(frozen=True)
class FolderFormat:
    """How one step's folder is written and read.

    ``write(stage, ds, inputs)``: writes the step's files (info.json and the log are written by
    the export itself); ``read(fs, folder, attrs) -> xarray.Dataset``: the result in ``folder``;
    ``subfolders``: the step folder can hold further results in sub-folders
    (``<step>/<sub>/``), besides its own files.
    """

    write: Callable
    read: Callable
    subfolders: bool = False


_FORMATS = {}


def register(step, *, write, read, subfolders=False):
    """Register the folder format of the declared step ``step``."""
    _FORMATS[step_table.check_step(step)] = FolderFormat(write, read, subfolders)


def unregister(step):
    """Forget the folder format of ``step`` (nothing happens when it has none)."""
    _FORMATS.pop(step, None)


def folder_format(step):
    """The :class:`FolderFormat` of ``step``: registered here, or by the module its declaration
    names (imported on first use)."""
    return step_table.registered(
        _FORMATS, step, "folder format: register one with eqegs_repo.io.app_format.register")


def _register_built_in():
    from eqegs_repo.io.app_format import e_spectrum_and_isf, q_integration, reconstruction

    register("reconstruction", write=reconstruction.write, read=reconstruction.read)
    register("q_integration", write=q_integration.write, read=q_integration.read, subfolders=True)
    register("e_spectrum_and_isf", write=e_spectrum_and_isf.write, read=e_spectrum_and_isf.read, subfolders=True)


_register_built_in()
