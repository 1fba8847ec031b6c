"""τ(T) across samples and proposals from a reanalysis table (docs/reanalysis.md#across-temperatures).

:func:`fit_temperature_law` takes the table of ``repo.reanalyze(...)`` (or any DataFrame with
``temperature_K``, ``tau_ns`` and ``tau_error_ns``), keeps the rows with a temperature and a
fitted τ, and fits the Arrhenius or Vogel–Fulcher–Tammann law of
:mod:`eqegs_repo.kernels.temperature_laws` weighted by the errors of τ.
"""
import numpy as np
import pandas as pd

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.temperature_laws import fit_arrhenius, fit_vft
from eqegs_repo.measured import with_error

LAWS = {"arrhenius": fit_arrhenius, "vft": fit_vft}
"""The laws :func:`fit_temperature_law` fits, by name."""
TABLE_COLUMNS = ("temperature_K", "tau_ns", "tau_error_ns")
"""The columns of a table :func:`fit_temperature_law` reads."""


def temperature_points(table):
    """The rows of ``table`` with a temperature (K) and a fitted τ with a positive error, as a
    DataFrame of ``proposal``, ``sample`` (when present) and :data:`TABLE_COLUMNS`, sorted by T.
    BadInput naming the missing columns when ``table`` lacks one."""
    if not isinstance(table, pd.DataFrame):
        raise BadInput(f"expected a pandas.DataFrame (the table of repo.reanalyze), got {type(table).__name__}")
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise BadInput(f"the table lacks the column(s) {', '.join(missing)}; expected the table of "
                       f"repo.reanalyze(...) with {', '.join(TABLE_COLUMNS)} (record the temperature "
                       "of each sample in a conditions spice record)")
    keys = [c for c in ("proposal", "sample") if c in table.columns]
    frame = table[keys + list(TABLE_COLUMNS)].copy()
    for name in TABLE_COLUMNS:
        frame[name] = pd.to_numeric(frame[name], errors="coerce")
    usable = frame[list(TABLE_COLUMNS)].gt(0).all(axis=1) & np.isfinite(frame[list(TABLE_COLUMNS)]).all(axis=1)
    return frame[usable].sort_values("temperature_K").reset_index(drop=True)


def fit_temperature_law(table, law="arrhenius", **options):
    """Fit ``law`` (``"arrhenius"`` or ``"vft"``) to τ(T) of the rows of ``table`` that have a
    temperature and a fitted τ (:func:`temperature_points`); returns a
    :class:`~eqegs_repo.kernels.temperature_laws.TemperatureFit` (values, covariance, errors;
    E_a in eV and kJ/mol for Arrhenius). ``options`` go to the law's kernel (VFT:
    ``t0_guess_k``). BadInput naming the law or the count of usable rows otherwise.
    """
    if law not in LAWS:
        raise BadInput(f"law must be one of {', '.join(LAWS)}, got {law!r}")
    points = temperature_points(table)
    try:
        return LAWS[law](temperature_k=points["temperature_K"].to_numpy(), tau_ns=points["tau_ns"].to_numpy(),
                         tau_error_ns=points["tau_error_ns"].to_numpy(), **options)
    except BadInput as exc:
        raise BadInput(f"{law} fit of {len(points)} of the table's {len(table)} rows (those with a "
                       f"temperature_K and a fitted tau_ns): {exc}") from None


def draw_temperature_fit(table, fit=None, **figure):
    """The figure of τ against 1000/T of the usable rows of ``table`` (:func:`temperature_points`)
    with ``fit`` drawn over them (:func:`eqegs_repo.figures.tau_against_temperature`;
    ``figure``: its ``size`` and ``dpi``)."""
    from eqegs_repo.figures.temperature import tau_against_temperature

    points = temperature_points(table)
    return tau_against_temperature(temperature_k=points["temperature_K"], tau_ns=points["tau_ns"],
                                   tau_error_ns=points["tau_error_ns"], fit=fit, **figure)


def fit_text(fit):
    """One line per fitted parameter of ``fit``, each ``value ± error`` with its unit (E_a in eV
    and kJ/mol), then χ²_red and the number of points: what ``eqegs reanalyze
    --temperature-law`` prints."""
    lines = [f"{fit.law} fit of tau(T) over {fit.n_points} samples (chi2_red {fit.chi2_red:.2f}):"]
    if fit.law == "arrhenius":
        lines.append(f"  E_a     = {with_error(fit.ea_ev, fit.ea_error_ev)} eV = "
                     f"{with_error(fit.ea_kj_mol, fit.ea_error_kj_mol)} kJ/mol")
        lines.append(f"  ln(tau_inf / ns) = {with_error(fit.value('ln_tau_inf'), fit.error('ln_tau_inf'))}")
    else:
        lines.append(f"  B       = {with_error(fit.value('b_k'), fit.error('b_k'))} K")
        lines.append(f"  T0      = {with_error(fit.value('t0_k'), fit.error('t0_k'))} K")
        lines.append(f"  ln(tau0 / ns) = {with_error(fit.value('ln_tau0'), fit.error('ln_tau0'))}")
    return "\n".join(lines)
