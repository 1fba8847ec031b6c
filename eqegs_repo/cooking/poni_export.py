"""A sample's geometry as a pyFAI ``.poni`` file: ``sample.export_poni(path)``.

The file holds the sample's effective ``geometry`` (spice + overrides) and a beam centre: the
one given as ``centre=``, else the manual one of ``q_integration`` (centre_method ``manual``),
else the one the q integration finds in the sample's frame sum (the reconstruction from the
cache, or cooked with ``cook=True``) by the
:class:`~eqegs_repo.cooking.recipe.IntegrationRecipe`: the centre a q integration with these
parameters fits. Only the reconstruction's fingerprint is computed (raw-file stats and the
``sensor_layout`` and ``roi`` values); nothing else is cooked or hashed. See
docs/spice.md#pyfai-poni-files.
"""
from eqegs_repo.cooking.cook import Cooker
from eqegs_repo.errors import BadInput
from eqegs_repo.io.poni_file import write_poni
from eqegs_repo.kernels.reconstruction import Roi
from eqegs_repo.params.effective import StepParameters, normalise_overrides
from eqegs_repo.params.poni_spice import poni_of


def _given_centre(centre):
    """(x, y, description) of ``centre=``: an (x, y) pair or a q-integration dataset."""
    attrs = getattr(centre, "attrs", None)
    if attrs is not None:
        if "centre_x" not in attrs or "centre_y" not in attrs:
            raise BadInput("centre= dataset has no attrs centre_x/centre_y; pass a q-integration "
                           "or E-spectrum dataset, or an (x, y) pair in px")
        return float(attrs["centre_x"]), float(attrs["centre_y"]), "the dataset given"
    try:
        x, y = (float(c) for c in centre)
    except (TypeError, ValueError):
        raise BadInput(f"centre= must be (x, y) in px or a q-integration dataset, found "
                       f"{centre!r}") from None
    return x, y, "centre= given"


def sample_beam_centre(sample, params, centre=None, cook=False):
    """(x, y, where it came from) of the beam centre to write (see the module docstring);
    ``params``: the sample's :class:`~eqegs_repo.params.effective.StepParameters`."""
    if centre is not None:
        return _given_centre(centre)
    qp = params.values("q_integration")
    if qp["centre_method"] == "manual" and qp["centre_x"] is not None and qp["centre_y"] is not None:
        return (float(qp["centre_x"]), float(qp["centre_y"]),
                f"q_integration centre (manual, from {params.source('q_integration', 'centre_x')})")
    cooker = Cooker(sample, params)
    rec = cooker.dataset("reconstruction") if cook else cooker.loaded("reconstruction")
    if rec is None:
        raise BadInput(f"{sample.proposal.key}/{sample.key}: no beam centre to write: q_integration."
                       f"centre_method is {qp['centre_method']!r} and no reconstruction is cooked for "
                       "the current spice; cook it first (sample.cook('reconstruction'), or cook=True / "
                       "--cook), or pass centre=(x, y)")
    found = cooker.recipe.centre(rec["image"].values, Roi(*rec.attrs["roi"]))
    return (found.x, found.y,
            f"the beam centre q_integration finds ({qp['centre_method']}) in the cooked reconstruction")


def export_poni(sample, path, *, centre=None, cook=False, overwrite=False, **overrides):
    """Write ``sample``'s geometry and beam centre as a PONI version 2.1 file at ``path`` (path
    or fsspec URL); returns the :class:`~eqegs_repo.io.poni_file.Poni` written.

    ``centre``: None (see the module docstring), (x, y) in px, or a dataset with
    ``attrs["centre_x"/"centre_y"]``; ``cook``: cook the reconstruction when it is not cached;
    ``overwrite``: replace an existing file; ``overrides``: as for ``sample.cook``.
    """
    label = f"{sample.proposal.key}/{sample.key}"
    params = StepParameters(sample.spice, normalise_overrides(overrides), label=label)
    geometry = params.values("geometry")
    x, y, where = sample_beam_centre(sample, params, centre, cook)
    canvas = params.values("sensor_layout")["canvas_shape"]
    poni = poni_of(geometry, (x, y), max_shape=canvas, source=str(path))
    comment = (f"eqegs_repo: geometry of {label}; beam centre x = {x:.6g}, y = {y:.6g} px from "
               f"{where}")
    write_poni(poni, path, overwrite=overwrite, comment=comment)
    return poni
