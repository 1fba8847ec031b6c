"""Figures of the three steps and of many samples, drawn from cooked or read-back datasets.

Each function takes a step's ``xarray.Dataset`` (``sample.cook(step)`` or
``sample.results[step][sub]``: the variable names are the same) and returns a
``matplotlib.figure.Figure``. matplotlib is imported only when a figure is drawn, and figures
are built without pyplot (no global state; ``fig.savefig("x.png")`` renders with Agg), so
they work in scripts, on clusters and in Jupyter (``display(fig)``). A dataset that lacks a
variable a figure needs raises :class:`~eqegs_repo.errors.BadInput` naming the figure, the
missing variables and where to get them.

Every drawing function also takes ``size=(width, height)`` in inches (default: the figure's own)
and ``dpi`` (default :data:`DEFAULT_DPI`, 100) for publication figures:
``isf(ds, size=(6, 4.5), dpi=300).savefig("isf.png")`` writes 1800 x 1350 px.
:func:`html_image` gives a figure as an inline HTML ``<img>``.

Figure numbers are those of the app's figures (docs/figures.md#the-figures-and-the-manual): "Q"
below for the q integration and "E" for E spectrum and ISF.

===============================  ==============================================  =============
function                         shows                                           manual
===============================  ==============================================  =============
:func:`frame_summed_image`       frame-summed image (log scale), ROI, centre     Q 01-02
:func:`forward_counts`           forward (direct-beam) counts per frame,         Q 06
                                 sample and background
:func:`subtracted_image`         frame-summed image after background             Q 07, Q 09
                                 subtraction (optionally masked), centre
:func:`mask`                     pixels used (white), beam centre, dead pixels,  Q 08
                                 sectors
:func:`background_subtraction`   I(q) before and after subtraction, k x bg       Q 10 (+ 01/07)
:func:`intensity_profile`        intensity per pixel vs q with errors, q range   Q 10, E 01/13
:func:`velocity_spectra`         drive waveform with the cut frames; forward     E 05-07, 11,
                                 and QE counts vs velocity                       12, 15, 21
:func:`energy_spectra`           forward and QE spectra vs energy, wing          E 17-20, 22
                                 regions and background fits
:func:`spectra`                  normalised forward and QE spectra vs energy     E 29-30
:func:`transforms`               real and imaginary parts of the transforms      E 26-27
:func:`isf`                      ISF with Monte-Carlo errors, threshold, fit     E 38-40
:func:`relaxation_summary`       tau and f_q against q or against sample         (library)
:func:`tau_versus_exposure`      tau against exposure of a watch history         (library)
:func:`tau_of_q`                 tau of many q ranges against q, the tau(q) law  (library)
:func:`isf_of_q`                 the ISF of every q range with its fit           (library)
:func:`tau_against_temperature`  tau against 1000/T across samples, fitted law   (library)
===============================  ==============================================  =============

:func:`export_figures` gives the figures of one step under the ``dl/fig/`` file names.

The functions live in :mod:`eqegs_repo.figures.steps` (one sample), :mod:`eqegs_repo.figures.many`
(many samples), :mod:`eqegs_repo.figures.q_resolved` (many q ranges of one sample),
:mod:`eqegs_repo.figures.temperature` (tau against temperature) and
:mod:`eqegs_repo.figures.drawing` (what they share); all are reachable here.
"""
from eqegs_repo.figures.drawing import DEFAULT_DPI, Q_LABEL, html_image, sector_list, with_error
from eqegs_repo.figures.many import SUMMARY_COLUMNS, relaxation_summary, summary_table, tau_versus_exposure
from eqegs_repo.figures.q_resolved import isf_of_q, tau_of_q
from eqegs_repo.figures.steps import (
    background_subtraction,
    energy_spectra,
    export_figures,
    forward_counts,
    frame_summed_image,
    intensity_profile,
    isf,
    mask,
    spectra,
    subtracted_image,
    transforms,
    velocity_spectra,
)
from eqegs_repo.figures.temperature import tau_against_temperature

__all__ = [
    "DEFAULT_DPI", "Q_LABEL", "SUMMARY_COLUMNS", "background_subtraction", "energy_spectra", "export_figures",
    "forward_counts", "frame_summed_image", "html_image", "intensity_profile", "isf", "isf_of_q", "mask",
    "relaxation_summary",
    "sector_list", "spectra", "subtracted_image", "summary_table", "tau_of_q", "tau_versus_exposure", "transforms",
    "velocity_spectra",
    "with_error",
    "tau_against_temperature",
]
