"""The step chain as the parameters see it: which spice types each cooking step reads, which
step comes before it (docs/architecture.md#the-route-of-a-parameter) and which fields never
change a result.

The steps and their spice types are declared once, in :mod:`eqegs_repo.step_table`;
:data:`STEP_TYPES` and :data:`UPSTREAM` are read-only views of that table.
"""
from collections.abc import Mapping

from eqegs_repo import step_table


class _TableView(Mapping):
    """``{step: getattr(declaration, field)}`` over the declared steps, read when used."""

    def __init__(self, field):
        self._field = field

    def __getitem__(self, step):
        return getattr(step_table.get(step), self._field)

    def __iter__(self):
        return iter(step_table.names())

    def __len__(self):
        return len(step_table.names())

    def __repr__(self):
        return repr(dict(self))


STEP_TYPES = _TableView("spice_types")
"""``{step: spice types it reads directly}`` (upstream steps add theirs)."""
UPSTREAM = _TableView("upstream")
"""``{step: the step before it, or None}``."""
# Fields that only name output folders or the exported dtype: they never change a result.
EXPORT_ONLY = {
    "q_integration": ("output_subdir",),
    "e_spectrum": ("output_subdir_mode", "output_subdir", "input_subdir"),
    "reconstruction": ("dtype_out",),
}


def chain_types(step):
    """Every spice type the chain up to ``step`` reads, in step order."""
    return tuple(name for s in step_table.chain(step) for name in STEP_TYPES[s])
