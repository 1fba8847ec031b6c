"""A step declared at run time through the registry (docs/architecture.md#adding-a-step) reaches
cook, the fingerprints, the table letters, the CLI's --step choices, export and read-back; removed,
it leaves no trace."""
import os

import numpy as np
import pytest
import xarray as xr

from eqegs_repo import BadInput, Repository, step_table
from eqegs_repo.cli.main import build_parser, main
from eqegs_repo.cooking import step_cooking
from eqegs_repo.display import legend, letters
from eqegs_repo.io import app_format
from eqegs_repo.io.app_format.text import read_table, table_text
from eqegs_repo.simulate import demo, synthetic

PROPOSAL = "2025A1234"
STEP = "forward_sum"
CSV = "forward_sum.csv"


def _cook(cooker):
    """The toy step: the total counts of each frame, from the reconstruction's dataset."""
    rec = cooker.dataset("reconstruction")
    total = rec["counts_per_frame"].values.astype(np.float64)
    return xr.Dataset({"total": xr.Variable("frame", total, {"units": "counts"})},
                      coords={"frame": np.arange(total.size)})


def _write(stage, ds, inputs):
    stage.write(CSV, table_text({"frame": ds["frame"].values, "total": ds["total"].values},
                                comment=inputs["comment"]))


def _read(fs, folder, attrs):
    table = read_table(fs, folder, CSV, 2)
    return xr.Dataset({"total": xr.Variable("frame", table[:, 1], {"units": "counts"})}, attrs=attrs)


@pytest.fixture
def toy_step():
    """Declare ``forward_sum`` (letter F, after reconstruction), register its cooking and its
    folder format; remove all three afterwards."""
    step_table.declare(STEP, letter="F", upstream="reconstruction", spice_types=(),
                       doc="total counts of each frame")
    try:
        app_format.register(STEP, write=_write, read=_read)
        step_cooking.register(STEP, cook=_cook, folder_inputs=lambda cooker, ds: {"comment": "# "},
                              figures=lambda ds, upstream: {})
        yield STEP
    finally:
        step_cooking.remove(STEP)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("add_a_step")
    tree = synthetic.write_tree(base, proposals=(PROPOSAL,), preset="tiny", seed=1, samples_per_proposal=1)
    truth = synthetic.load_truth(base, tree.account, PROPOSAL, "S001")
    repo = Repository(tree.url(), spice_url="memory://spice-add-a-step", cache_url=f"{base}/cache")
    demo.seed_spice(repo[PROPOSAL], truth.params, bg_n_points=8, isf_error_threshold=0.1, n_mc=40)
    return repo, tree.url()


def test_a_declared_step_cooks_exports_reads_back_and_shows(toy_step, tree, capsys):
    repo, url = tree
    sample = repo[PROPOSAL]["S001"]
    ds = sample.cook(toy_step)
    rec = sample.cook("reconstruction")
    np.testing.assert_array_equal(ds["total"].values, rec["counts_per_frame"].values)
    assert ds.attrs["step"] == toy_step
    assert ds.attrs["fingerprint"] != rec.attrs["fingerprint"]  # its own fingerprint, over the upstream one
    assert set(ds.attrs["parameters"]) == {"sensor_layout", "roi"}  # the chain's spice types
    assert sample.cache_status()[toy_step] == "fresh"

    assert letters() == {"reconstruction": "R", "q_integration": "Q", "e_spectrum_and_isf": "E", toy_step: "F"}
    assert "F forward_sum" in legend()
    assert toy_step in repo[PROPOSAL].table().columns

    exported = sample.export(toy_step)
    assert exported.folder == f"{sample.path}/{toy_step}"
    assert os.path.isfile(f"{exported.folder}/{CSV}") and os.path.isfile(exported.zip)
    assert exported.zip.endswith(f"{toy_step}_S001.zip")
    with pytest.raises(BadInput, match="no sub-folders"):
        sample.export(toy_step, subdir="A")
    back = sample.results[toy_step]["main"]
    np.testing.assert_allclose(back["total"].values, ds["total"].values)
    assert back.attrs["fingerprint"] == ds.attrs["fingerprint"]  # info.json read back
    assert "F" in repo[PROPOSAL].table().compact()["on_disk"].iloc[-1]

    choices = next(a for a in build_parser()._subparsers._group_actions[0].choices["cook"]._actions
                   if a.dest == "step").choices
    assert toy_step in choices
    assert main(["cook", url, PROPOSAL, "S001", "--step", toy_step]) == 0
    assert "total" in capsys.readouterr().out


def test_a_removed_step_leaves_no_trace(toy_step):
    assert toy_step in step_table.names()
    step_cooking.remove(toy_step)
    assert toy_step not in step_table.names()
    assert set(letters()) == {"reconstruction", "q_integration", "e_spectrum_and_isf"}
    with pytest.raises(BadInput, match="unknown step 'forward_sum'"):
        app_format.folder_format(toy_step)
    step_table.declare(STEP, letter="F", upstream="reconstruction", spice_types=())  # for the fixture's removal


def test_declarations_are_checked():
    with pytest.raises(BadInput, match="declared already"):
        step_table.declare("q_integration", letter="Z", upstream=None, spice_types=())
    with pytest.raises(BadInput, match="letter 'R' is the letter of reconstruction"):
        step_table.declare("other", letter="R", upstream=None, spice_types=())
    with pytest.raises(BadInput, match="upstream step 'nowhere' is not declared"):
        step_table.declare("other", letter="Z", upstream="nowhere", spice_types=())
    with pytest.raises(BadInput, match="upstream step of q_integration"):
        step_table.undeclare("reconstruction")
    assert step_table.names() == ("reconstruction", "q_integration", "e_spectrum_and_isf")
