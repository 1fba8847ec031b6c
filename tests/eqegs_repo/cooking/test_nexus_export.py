"""sample.export_nexus, table_to_nexus, reanalyze(nexus=), eqegs cook/reanalyze --nexus: NeXus files
read back with h5py (values equal to the cooked datasets') and loaded by nexusformat."""
import json
import os

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("h5py")

import h5py  # noqa: E402
from nexusformat import nexus  # noqa: E402  (the test extra installs it with h5py)
from nexusformat.nexus import validate  # noqa: E402

from eqegs_repo import batch  # noqa: E402
from eqegs_repo.cli.main import main  # noqa: E402
from eqegs_repo.cooking.nexus_export import table_to_nexus  # noqa: E402
from eqegs_repo.errors import BadInput, ResultExists  # noqa: E402
from eqegs_repo.io.nexus import read_nexus  # noqa: E402
from tests.helpers.cooktrees import PROPOSAL, demo_tree  # noqa: E402


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Tiny tree (background + S001), q range 11..13, 40 Monte-Carlo copies; S001 exported once."""
    base = tmp_path_factory.mktemp("nexus")
    repo = demo_tree(base, seed=1, spice_url="memory://spice-nexus-export")
    sample = repo[PROPOSAL]["S001"]
    path = sample.export_nexus(str(base / "S001.nxs"))
    return repo, sample, path, base


def _every_dataset(f):
    found = []
    f.visititems(lambda name, node: found.append((name, node)) if isinstance(node, h5py.Dataset) else None)
    return found


def test_sample_file_holds_the_cooked_values(tree):
    _, sample, path, _ = tree
    eds, qds = sample.cooked, sample.cook("q_integration")
    with h5py.File(path, "r") as f:
        entry = f["entry"]
        assert entry.attrs["NX_class"] == "NXentry" and entry.attrs["default"] == "isf"
        data = entry["data"]
        assert data.attrs["NX_class"] == "NXdata" and data.attrs["signal"] == "I"
        assert list(data.attrs["axes"]) == ["q"] and data["q"].attrs["units"] == "1/nm"
        assert np.array_equal(data["q"][()], qds.q.values)
        assert np.array_equal(data["I"][()], qds.profile.values, equal_nan=True)
        assert np.array_equal(data["I_errors"][()], qds.profile_sigma.values, equal_nan=True)
        assert np.array_equal(entry["frames/I"][()], qds.intensity.values)
        assert np.allclose(entry["frames/I_errors"][()] ** 2, qds.variance.values)
        isf = entry["isf"]
        assert isf.attrs["signal"] == "isf" and list(isf.attrs["axes"]) == ["t"]
        assert isf["t"].attrs["units"] == "ns"
        assert np.array_equal(isf["isf"][()], eds.isf.values)
        assert np.array_equal(isf["isf_errors"][()], eds.isf_sigma.values)
        assert np.array_equal(isf["isf_fit"][()], eds.isf_fit.values)
        results = entry["fit/results"]
        assert results["tau"][()] == eds.tau.item() and results["tau"].attrs["units"] == "ns"
        assert results["tau_errors"][()] == eds.tau_error.item()
        assert results["f_q"][()] == eds.f_q.item() and results["f_q_errors"][()] == eds.f_q_error.item()
        for name in ("q_weighted", "q_pixel_min", "q_pixel_max", "q_min", "q_max"):  # the q of the result
            assert results[name][()] == eds.attrs[name] and results[name].attrs["units"] == "1/nm"
        assert entry["fit/model/data"].asstr()[()] == eds.attrs["fit"]["model"]
        mono = entry["instrument/monochromator"]
        assert mono.attrs["NX_class"] == "NXmonochromator"
        assert mono["energy"][()] == eds.attrs["parameters"]["geometry"]["energy_keV"]
        assert mono["wavelength"].attrs["units"] == "nm"
        assert entry["reduction"].attrs["NX_class"] == "NXprocess"
        assert entry["reduction/input/beam_centre_x"][()] == qds.attrs["centre_x"]
        for name, node in _every_dataset(f):
            if h5py.check_string_dtype(node.dtype) is None:
                assert "units" in node.attrs, f"{name} has no units"
            else:
                assert h5py.check_string_dtype(node.dtype).encoding == "utf-8", name


def test_sample_file_provenance(tree):
    _, sample, path, _ = tree
    eds = sample.cooked
    root = read_nexus(path)
    process = root["entry/e_spectrum_and_isf"]
    assert process["fingerprint/data"].value == eds.attrs["fingerprint"]
    assert process["version"].value == eds.attrs["library_version"]
    assert process["e_spectrum/n_mc"].value == 40
    records = json.loads(process["spice_records/data"].value)
    assert records["e_spectrum"] == eds.attrs["spice"]["e_spectrum"]
    assert records["e_spectrum"][0]["uuid"] and records["e_spectrum"][0]["revision"] >= 1
    assert json.loads(process["parameters/data"].value)["e_spectrum"] == eds.attrs["parameters"]["e_spectrum"]
    assert root["entry/reduction/fingerprint/data"].value == sample.cook("q_integration").attrs["fingerprint"]
    files, sizes = root["entry/reconstruction/input/files"].value, root["entry/reconstruction/input/sizes"]
    assert any(name.endswith(".npy") for name in files) and sizes.units == "B"
    assert list(sizes.value) == [os.path.getsize(name) for name in files]
    assert [p["sequence_index"].value for p in (root["entry/reconstruction"], root["entry/reduction"], process)] \
        == [1, 2, 3]


def test_nexusformat_loads_the_tree(tree):
    _, _, path, _ = tree
    f = nexus.nxload(path)
    assert f.nxclass == "NXroot"
    assert f["entry"].nxclass == "NXentry"
    assert f["entry/data"].nxclass == "NXdata" and f["entry/data"].nxsignal.nxname == "I"
    assert [axis.nxname for axis in f["entry/data"].nxaxes] == ["q"]
    assert f["entry/isf"].nxsignal.nxname == "isf" and f["entry/isf"].nxerrors is not None
    assert f["entry"].plottable_data.nxname == "isf"
    assert f["entry/instrument/monochromator"].nxclass == "NXmonochromator"
    assert f["entry/instrument/detector"].nxclass == "NXdetector"
    assert f["entry/fit"].nxclass == "NXprocess" and f["entry/fit/results"].nxclass == "NXparameters"
    assert f["entry/e_spectrum_and_isf/spice_records"].nxclass == "NXnote"


def test_nexusformat_validates_against_the_base_classes(tree):
    """nexusformat's validator (the NXDL base classes it ships) finds no error and no warning: every
    group, field and attribute of the file is one the base classes define."""
    _, _, path, _ = tree
    assert validate.validate_file(path) == (0, 0)


def test_existing_sample_file_refused_before_cooking(tree, monkeypatch):
    _, sample, path, _ = tree
    before = os.stat(path).st_mtime_ns
    monkeypatch.setattr("eqegs_repo.cooking.nexus_export.Cooker", None)  # cooking would fail
    with pytest.raises(ResultExists, match="exists; pass overwrite=True"):
        sample.export_nexus(path)
    assert os.stat(path).st_mtime_ns == before


def test_overwrite_replaces_with_overrides(tree):
    _, sample, path, base = tree
    other = str(base / "copy.nxs")
    sample.export_nexus(other)
    sample.export_nexus(other, overwrite=True, n_mc=30)
    root = read_nexus(other)
    assert root["entry/e_spectrum_and_isf/e_spectrum/n_mc"].value == 30
    assert json.loads(root["entry/e_spectrum_and_isf/overrides/data"].value) == {"e_spectrum": {"n_mc": 30}}
    assert np.array_equal(root["entry/isf/isf"].value, sample.cook(n_mc=30).isf.values)


def test_failing_sample_write_leaves_no_file(tree, monkeypatch):
    _, sample, _, base = tree
    folder = base / "failing"
    folder.mkdir()

    def broken(datasets, run):
        from eqegs_repo.io.nexus import Field, Group
        return Group("NXentry", {"good": Field(np.arange(4), "1"), "bad": Field(object())})
    monkeypatch.setattr("eqegs_repo.cooking.nexus_export.sample_entry", broken)
    with pytest.raises(BadInput, match="bad: expected numbers or texts, found object"):
        sample.export_nexus(str(folder / "S001.nxs"))
    assert os.listdir(folder) == []


def test_default_path_is_the_sample_folder(tree):
    _, sample, _, _ = tree
    path = sample.export_nexus()
    try:
        assert path == os.path.join(sample.path, "S001.nxs")
        assert read_nexus(path)["entry/sample/name"].value == "S001"
    finally:
        os.unlink(path)


def test_table_file_reads_back(tmp_path):
    table = pd.DataFrame({
        "proposal": ["2025A1234", "2025A1234"], "sample": ["S001", "S002"], "status": ["ok", "failed"],
        "error": [None, "bad spice: ü"], "tau_ns": [101.5, None], "tau_error_ns": [3.25, None],
        "f_q": [0.71, np.nan], "f_q_error": [0.02, np.nan], "q_min": [11.0, 11.0], "q_weighted": [12.08, np.nan],
        "mystery": [1.0, 2.0]})
    path = table_to_nexus(table, str(tmp_path / "table.nxs"))
    with h5py.File(path, "r") as f:
        results = f["entry/results"]
        assert results.attrs["NX_class"] == "NXdata" and results.attrs["signal"] == "tau_ns"
        assert np.array_equal(results["tau_ns"][()], [101.5, np.nan], equal_nan=True)
        assert np.array_equal(results["tau_ns_errors"][()], [3.25, np.nan], equal_nan=True)
        assert results["tau_ns"].attrs["units"] == "ns"
        assert results["f_q_errors"][()][0] == 0.02
        assert list(results["sample"].asstr()[()]) == ["S001", "S002"]
        columns = f["entry/columns"]
        assert columns.attrs["NX_class"] == "NXcollection"
        assert list(columns["error"].asstr()[()]) == ["", "bad spice: ü"]
        assert columns["q_min"].attrs["units"] == columns["q_weighted"].attrs["units"] == "1/nm"
        assert list(columns.attrs["columns_without_units"]) == ["mystery"]
    assert nexus.nxload(path)["entry/results"].nxsignal.nxname == "tau_ns"
    assert validate.validate_file(path) == (0, 0)
    with pytest.raises(ResultExists):
        table_to_nexus(table, path)
    with pytest.raises(BadInput, match="no rows"):
        table_to_nexus(table.iloc[:0], str(tmp_path / "never.nxs"))


def test_reanalyze_and_cli_write_nexus(tree, capsys):
    repo, sample, _, base = tree
    path = str(base / "reanalysis.nxs")
    table = batch.reanalyze(repo, samples="S001", progress=False, nexus=path)
    assert read_nexus(path)["entry/results/tau_ns"].value[0] == table.tau_ns[0]
    with pytest.raises(ResultExists):  # refused before anything is cooked
        batch.reanalyze(repo, samples="S001", progress=False, nexus=path)
    cli = str(base / "cli.nxs")
    where = ["--spice-url", "memory://spice-nexus-export", "--cache-url", repo.cache_url]
    assert main(["cook", repo.url, PROPOSAL, "S001", "--nexus", cli] + where) == 0
    assert f"NeXus file {cli}" in capsys.readouterr().out
    assert np.array_equal(read_nexus(cli)["entry/isf/isf"].value, sample.cooked.isf.values)
    assert main(["cook", repo.url, PROPOSAL, "S001", "--nexus", cli] + where) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["cook", repo.url, PROPOSAL, "S001", "--nexus", cli, "--overwrite"] + where) == 0
    assert main(["cook", repo.url, PROPOSAL, "S001", "--step", "q_integration", "--nexus", str(base / "q.nxs")]
                + where) == 1
    assert "needs --step e_spectrum_and_isf" in capsys.readouterr().err
    cli_table = str(base / "cli-table.nxs")
    assert main(["reanalyze", repo.url, "--samples", "S001", "--no-progress", "--nexus", cli_table] + where) == 0
    assert read_nexus(cli_table)["entry/results/sample"].value == ["S001"]


def test_without_fit_the_file_says_so(tree):
    _, sample, _, base = tree
    path = sample.export_nexus(str(base / "nofit.nxs"), fit_model="none")
    root = read_nexus(path)
    assert root["entry/fit/model/data"].value == "none"
    assert sorted(root["entry/fit/results"].children) == ["q_max", "q_min", "q_pixel_max", "q_pixel_min", "q_weighted"]
    assert "isf_fit" not in root["entry/isf"].children and "auxiliary_signals" not in root["entry/isf"].attrs
    assert validate.validate_file(path) == (0, 0)
