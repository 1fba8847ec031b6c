"""How each declared step cooks, exports and draws: registered here under its name
(docs/architecture.md#adding-a-step).

A step is declared in :mod:`eqegs_repo.step_table` (name, letter, upstream step, spice types);
the module its declaration names registers a :class:`StepCooking` here (with :func:`register`)
and its folder format in :mod:`eqegs_repo.io.app_format`. The built-in steps are registered by
:mod:`eqegs_repo.cooking.built_in_steps`. The Cooker, the export, the cache status and the
batch find a step's behaviour through :func:`cooking_of`.
"""
from collections.abc import Callable
from dataclasses import dataclass

from eqegs_repo import step_table
from eqegs_repo.io import app_format


def _none(*args):
    return {}


@dataclass(frozen=True)
class StepCooking:
    """The behaviours of one step; only ``cook`` is required.

    * ``cook(cooker) -> xarray.Dataset``: computes the step's dataset (upstream datasets come from
      ``cooker.dataset(step)``, parameters from ``cooker.params``);
    * ``folder_inputs(cooker, ds) -> dict``: what the step's folder writer needs besides the
      dataset (:class:`eqegs_repo.io.app_format.FolderFormat`);
    * ``figures(ds, upstream) -> {file name: draw() -> Figure}``: the figures exported to dl/fig/
      (``upstream``: the dataset of the upstream step, or None);
    * ``fingerprint(cooker) -> dict``: inputs of the fingerprint besides the raw files, the spice
      types of the chain and the upstream fingerprint (e.g. a background run's files);
    * ``folders(params) -> dict``: ``subdir`` (the result's sub-folder of the step folder),
      ``input_subdir``, and ``q_subdir``/``e_subdir`` of the zip name
      (:func:`eqegs_repo.io.app_format.names.zip_name`); all "" when not given;
    * ``subdir_overrides(subdir) -> {type: {field: value}}``: the parameters that put the result
      in the sub-folder ``subdir`` (None: the step has no sub-folders);
    * ``info(cooker, target) -> dict``: further fields of dl/info/info.json;
    * ``export_types``: spice types that only the export reads (they go into info.json).
    """

    cook: Callable
    folder_inputs: Callable = _none
    figures: Callable = _none
    fingerprint: Callable = _none
    folders: Callable = _none
    subdir_overrides: Callable | None = None
    info: Callable = _none
    export_types: tuple = ()


_COOKING = {}


def register(step, **behaviours):
    """Register the :class:`StepCooking` of the declared step ``step`` (keywords: its fields)."""
    _COOKING[step_table.check_step(step)] = StepCooking(**behaviours)


def cooking_of(step):
    """The :class:`StepCooking` of ``step``: registered already, or by the module its declaration
    names (imported on first use)."""
    return step_table.registered(
        _COOKING, step, "cooking registered: register it with eqegs_repo.cooking.step_cooking.register")


def remove(step):
    """Forget the step ``step``: its cooking, its folder format and its declaration (for steps
    added at run time, e.g. by a test)."""
    _COOKING.pop(step, None)
    app_format.unregister(step)
    step_table.undeclare(step)
