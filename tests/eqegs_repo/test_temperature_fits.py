"""tau(T) across samples: an Arrhenius law injected over five temperatures is recovered from a
reanalysis with the library's defaults (issue 21), and the table front end of the fits."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from eqegs_repo import Repository
from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.temperature_laws import K_B_EV_PER_K, arrhenius_tau
from eqegs_repo.simulate import demo, synthetic
from eqegs_repo.temperature_fits import (
    draw_temperature_fit,
    fit_temperature_law,
    temperature_points,
)
from tests.helpers.cooktrees import BACKGROUND, PROPOSAL, image_params

EA_EV = 0.15
TEMPERATURES_K = (260.0, 280.0, 300.0, 320.0, 340.0)
TAU_300_NS = 100.0


@pytest.fixture(scope="module")
def arrhenius_table(tmp_path_factory):
    """Five samples whose tau follows tau_300 exp(E_a/k_B (1/T - 1/300 K)) (44 to 244 ns), each
    with its conditions record (in K or in C), reanalysed with the library's defaults."""
    base = tmp_path_factory.mktemp("arrhenius")
    params = image_params(tau_exponent=0.0)        # every q has the sample's tau
    folder = base / PROPOSAL
    synthetic.write_sample(folder / BACKGROUND, params, seed=10_000, background=True)
    tau_inf = TAU_300_NS * np.exp(-EA_EV / (K_B_EV_PER_K * 300.0))
    repo = Repository(f"{base}/{{proposal}}/{{sample}}", cache_url=f"{base}/.cache")  # spice on disk, seen by the workers
    demo.seed_spice(repo[PROPOSAL], params)          # the simulation's geometry; e_spectrum defaults
    for index, temperature in enumerate(TEMPERATURES_K):
        key = f"S{index + 1:03d}"
        tau = float(arrhenius_tau(temperature, tau_inf_ns=tau_inf, ea_ev=EA_EV))
        synthetic.write_sample(folder / key, dataclasses.replace(params, tau0_ns=tau), seed=200 + index)
        celsius = index % 2 == 1
        repo[PROPOSAL].spice.seed("conditions", key, temperature=temperature - 273.15 * celsius,
                                  temperature_unit="C" if celsius else "K", fields={"series": "A"})
    table = repo.reanalyze(samples="S00[1-5]", progress=False, workers=1)
    table.attrs["base"] = base
    return table


def test_arrhenius_law_over_five_temperatures_recovers_the_activation_energy(arrhenius_table):
    table = arrhenius_table
    assert (table.status == "ok").all(), table.error.tolist()
    assert table.temperature_K.tolist() == pytest.approx(list(TEMPERATURES_K))
    assert (table["conditions.series"] == "A").all() and table.pressure_Pa.isna().all()
    fit = fit_temperature_law(table)
    pull = (fit.ea_ev - EA_EV) / fit.ea_error_ev
    assert abs(pull) < 3, fit.to_dict()
    assert fit.ea_error_ev < 0.1 * EA_EV            # a measurement, not a bound
    assert fit.n_points == 5 and fit.chi2_red < 5
    assert fit.ea_kj_mol == pytest.approx(fit.ea_ev * 96.485, rel=1e-4)


def test_table_front_end_keeps_usable_rows_and_says_what_is_missing():
    table = pd.DataFrame({"proposal": ["P"] * 4, "sample": ["S1", "S2", "S3", "S4"],
                          "temperature_K": [300.0, None, 280.0, 320.0],
                          "tau_ns": [100.0, 90.0, None, 70.0], "tau_error_ns": [5.0, 5.0, 5.0, 4.0]})
    points = temperature_points(table)
    assert points["sample"].tolist() == ["S1", "S4"]          # no temperature, no tau: left out
    assert fit_temperature_law(table).n_points == 2
    with pytest.raises(BadInput, match="vft fit of 2 of the table's 4 rows .* at least 3 points"):
        fit_temperature_law(table, "vft")
    with pytest.raises(BadInput, match="lacks the column.* temperature_K"):
        fit_temperature_law(table.drop(columns="temperature_K"))
    with pytest.raises(BadInput, match="law must be one of arrhenius, vft"):
        fit_temperature_law(table, "vtf")


def test_figure_of_tau_against_temperature(arrhenius_table):
    pytest.importorskip("matplotlib")
    fit = fit_temperature_law(arrhenius_table)
    fig = draw_temperature_fit(arrhenius_table, fit)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and "1000 / T" in ax.get_xlabel()
    assert any("E_a = " in text.get_text() for text in ax.get_legend().get_texts())
    x_line = ax.get_lines()[-1].get_xdata()
    assert x_line.min() == pytest.approx(1000 / 340) and x_line.max() == pytest.approx(1000 / 260)



def test_eqegs_reanalyze_prints_the_temperatures_and_the_fitted_law(arrhenius_table, capsys):
    from eqegs_repo.cli.main import main

    base = arrhenius_table.attrs["base"]
    status = main(["reanalyze", f"{base}/{{proposal}}/{{sample}}", "--cache-url", f"{base}/.cache",
                   "--samples", "S00[1-5]", "--no-progress", "--temperature-law", "arrhenius"])
    out = capsys.readouterr().out
    assert status == 0
    s004 = next(line for line in out.splitlines() if " S004 " in line)   # recorded as 46.85 C
    assert "temperature_K" in out and " 320.0 " in s004
    fit = fit_temperature_law(arrhenius_table)                        # the same (cached) results
    assert f"arrhenius fit of tau(T) over 5 samples (chi2_red {fit.chi2_red:.2f})" in out
    assert "E_a     = " in out and " eV = " in out and "kJ/mol" in out
