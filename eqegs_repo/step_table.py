"""The cooking steps, each declared once: name, letter, upstream step, spice types, cooking module
(docs/architecture.md#adding-a-step).

Everything that lists steps derives from this table: the chain and the fingerprints
(:mod:`eqegs_repo.params.chain`), the folders that are never samples, the app's step folders
(:mod:`eqegs_repo.io.app_format`), the ``RQE`` letters of the tables, ``Sample.results``, the
batch and the ``--step`` choices of the ``eqegs`` command. How a step cooks, writes and draws
is registered by the module its declaration names (see :mod:`eqegs_repo.cooking.step_cooking`).

The table is read when it is used, never copied at import time, so a step declared later (a
plugin, or a test: :func:`declare` then :func:`undeclare`) reaches every one of those places.
"""
import importlib
from dataclasses import dataclass
from typing import Literal

from eqegs_repo.errors import BadInput


@dataclass(frozen=True)
class Step:
    """One cooking step.

    ``name``: the step and its folder in a sample folder; ``letter``: its column in the compact
    ``on_disk``/``cooked`` tables (upper case); ``upstream``: the step whose dataset it reads
    (None for the first step); ``spice_types``: the spice types it reads itself (upstream steps
    add theirs; they make its fingerprint and provenance); ``cooking``: the module that registers
    how it cooks, writes and draws (imported on first use; None when registered otherwise);
    ``doc``: one line for the tables' legend and the docs; ``on_background_run``: False when the
    step does not apply to a proposal's background run (the run the other samples subtract).
    """

    name: str
    letter: str
    upstream: str | None
    spice_types: tuple
    cooking: str | None = None
    doc: str = ""
    on_background_run: bool = True


_TABLE = {}


def declare(name, *, letter, upstream, spice_types, cooking=None, doc="", on_background_run=True):
    """Add a step after the declared ones and return its :class:`Step`. Refuses a name or letter
    in use and an upstream step that is not declared yet."""
    if not isinstance(name, str) or not name.isidentifier():
        raise BadInput(f"step name must be an identifier (it names a folder), found {name!r}")
    if name in _TABLE:
        raise BadInput(f"step {name!r} is declared already")
    if not (isinstance(letter, str) and len(letter) == 1 and letter.isupper()):
        raise BadInput(f"step {name!r}: letter must be one upper-case character, found {letter!r}")
    taken = {s.letter: s.name for s in _TABLE.values()}
    if letter in taken:
        raise BadInput(f"step {name!r}: letter {letter!r} is the letter of {taken[letter]}")
    if upstream is not None and upstream not in _TABLE:
        raise BadInput(f"step {name!r}: upstream step {upstream!r} is not declared; expected one of "
                       f"{', '.join(_TABLE)}")
    _TABLE[name] = Step(name, letter, upstream, tuple(spice_types), cooking, doc, bool(on_background_run))
    return _TABLE[name]


def undeclare(name):
    """Remove a step declared with :func:`declare` (refused while a declared step reads it)."""
    step = get(name)
    readers = [s.name for s in _TABLE.values() if s.upstream == name]
    if readers:
        raise BadInput(f"step {name!r} is the upstream step of {', '.join(readers)}; undeclare those first")
    del _TABLE[step.name]


def names():
    """The declared step names, in declaration order (every step after its upstream step)."""
    return tuple(_TABLE)


def get(name):
    """The :class:`Step` called ``name``; BadInput listing the steps when there is none."""
    return _TABLE[check_step(name)]


def check_step(step):
    """Return ``step`` if it is a declared step, else raise BadInput listing them."""
    if step not in _TABLE:
        raise BadInput(f"unknown step {step!r}; expected one of {', '.join(_TABLE)}")
    return step


def chain(step):
    """The steps up to and including ``step``, first step first."""
    out = [get(step).name]
    while _TABLE[out[0]].upstream is not None:
        out.insert(0, _TABLE[out[0]].upstream)
    return out


def load(step):
    """Import the module named by ``step``'s declaration (``cooking``), which registers how the
    step cooks, writes and reads; nothing happens for a step declared without one."""
    module = get(step).cooking
    if module:
        importlib.import_module(module)


def registered(registry, step, missing):
    """``registry[step]`` (a registry of step behaviours, keyed by step name): registered
    already, or by the module ``step``'s declaration names (:func:`load`); BadInput
    ``step ... has no <missing>`` otherwise."""
    if step not in registry:
        load(step)
    if step not in registry:
        raise BadInput(f"step {step!r} has no {missing} (docs/architecture.md#adding-a-step)")
    return registry[step]


def background_steps():
    """The steps that apply to a proposal's background run: those whose chain holds no step
    declared with ``on_background_run=False`` (reconstruction and q_integration)."""
    return tuple(s for s in _TABLE if all(_TABLE[c].on_background_run for c in chain(s)))


def downstream(step):
    """The steps whose chain contains ``step`` (``step`` included), in table order."""
    return tuple(s for s in _TABLE if step in chain(s))


# The built-in steps: the analysis app's chain (docs/physics.md).
_BUILT_IN = "eqegs_repo.cooking.built_in_steps"
declare("reconstruction", letter="R", upstream=None, spice_types=("sensor_layout", "roi"), cooking=_BUILT_IN,
        doc="frame-summed image by the sensor layout, counts per frame, ROI")
declare("q_integration", letter="Q", upstream="reconstruction", spice_types=("geometry", "q_integration"),
        cooking=_BUILT_IN, doc="beam centre, mask, radial sums of every frame, background subtracted")
declare("e_spectrum_and_isf", letter="E", upstream="q_integration",
        spice_types=("sp_param", "calibration", "velocity_calibration", "angle_calibration", "q_range",
                     "e_spectrum"),
        cooking=_BUILT_IN, doc="calibrations, energy spectra, ISF with Monte-Carlo errors, fit",
        on_background_run=False)

StepName = Literal[names()]
"""The type of a step argument (``sample.cook(step)``): the built-in steps (a step declared at
run time is accepted too; :func:`check_step` is the rule)."""
