"""Optional dependencies: a missing one names the extra that installs it, or is done without
(figures of an export, progress bars). Progress bars on cook passes, quiet off a terminal."""
import sys

import pytest
import xarray as xr

from eqegs_repo import Repository, batch, figures
from eqegs_repo.cli.main import main
from eqegs_repo.cooking import passes, progress
from eqegs_repo.errors import MissingExtra, SkippedWarning, optional_import
from tests.helpers.cooktrees import image_params, seed_spice, write_runs


class _NotInstalled:
    """A meta path finder for which ``top`` does not exist."""

    def __init__(self, top):
        self.top = top

    def find_spec(self, name, path=None, target=None):
        if name == self.top:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def hide(monkeypatch, top):
    """Make ``top`` and its sub-modules unimportable, as if not installed."""
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NotInstalled(top)] + sys.meta_path)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("extras")
    params = image_params(n_frames=256)
    write_runs(base, params, [1])
    repo = Repository(f"{base}/{{proposal}}/{{sample}}", cache_url=False)
    seed_spice(repo["2025A1234"], params, bg_n_points=10, n_mc=20)
    return base


def repo_of(base):
    return Repository(f"{base}/{{proposal}}/{{sample}}", cache_url=False)


@pytest.mark.parametrize("module, extra", [("matplotlib.figure", "plot"), ("distributed", "dask"),
                                           ("dask.array", "dask"), ("tqdm.auto", "progress"),
                                           ("numba", "fast"), ("h5py", "hdf5")])
def test_a_missing_module_names_its_extra(monkeypatch, module, extra):
    hide(monkeypatch, module.split(".")[0])
    with pytest.raises(MissingExtra, match=f'doing X needs {module.split(".")[0]}, which is not installed: '
                                           rf'pip install "eqegs_repo\[{extra}\]"') as err:
        optional_import(module, "doing X")
    assert isinstance(err.value, ImportError)
    assert optional_import(module, "doing X", required=False) is None


def test_an_installed_module_that_breaks_raises_its_own_error(monkeypatch):
    monkeypatch.delitem(sys.modules, "tqdm.auto", raising=False)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)   # tqdm is there, one sub-module is not
    with pytest.raises(ModuleNotFoundError) as err:
        optional_import("tqdm.auto", "bars")
    assert not isinstance(err.value, MissingExtra)


def test_figures_reanalysis_and_dask_raw_name_their_extra(tree, monkeypatch, capsys):
    cooked = repo_of(tree)["2025A1234"]["S001"].cooked
    hide(monkeypatch, "matplotlib")
    with pytest.raises(MissingExtra, match=r'drawing figures needs matplotlib.*eqegs_repo\[plot\]'):
        figures.frame_summed_image(xr.Dataset())
    with pytest.raises(MissingExtra, match=r"eqegs_repo\[plot\]"):
        figures.isf(cooked)
    hide(monkeypatch, "distributed")
    hide(monkeypatch, "dask")
    with pytest.raises(MissingExtra, match=r'reanalysis on Dask needs distributed.*eqegs_repo\[dask\]'):
        batch.reanalyze(repo_of(tree))
    assert main(["reanalyze", str(tree)]) == 1
    assert 'pip install "eqegs_repo[dask]"' in capsys.readouterr().err
    with pytest.raises(MissingExtra, match=r"Dask-backed raw data.*eqegs_repo\[dask\]"):
        repo_of(tree)["2025A1234"]["S001"].open_raw(chunks=8)


def test_export_without_matplotlib_says_it_skipped_the_figures(tree, monkeypatch, capsys):
    hide(monkeypatch, "matplotlib")
    sample = repo_of(tree)["2025A1234"]["S001"]
    with pytest.warns(SkippedWarning, match=r"figures skipped.*eqegs_repo\[plot\]"):
        done = sample.export("reconstruction")
    assert done.figures == () and len(done.notes) == 1 and "matplotlib" in done.notes[0]
    with open(f"{done.folder}/dl/info/info.json") as f:
        assert "fig/" not in f.read()
    assert main(["cook", str(tree), "2025A1234", "S001", "--step", "reconstruction", "--export",
                 "--overwrite", "--no-cache"]) == 0
    assert "note: figures skipped: drawing them needs matplotlib" in capsys.readouterr().out
    monkeypatch.undo()
    again = sample.export("reconstruction", overwrite=True)
    assert again.notes == () and again.figures == ("dl/fig/01_frame_summed_image.png",)


def test_passes_report_their_frames_and_cook_shows_bars_on_a_terminal(tree, monkeypatch, capsys):
    sample = repo_of(tree)["2025A1234"]["S001"]
    from eqegs_repo.io.run import open_run
    from eqegs_repo.kernels.sensors import SensorLayout

    stack = open_run(sample.fs, sample.path, sample.marker, sample.layout).stack
    layout = SensorLayout.from_mapping(sample.spice.sensor_layout.to_dict())
    done = []
    passes.frame_sum_pass(stack, layout, block_frames=64, workers=2, progress=done.append)
    assert sorted(done) == [64] * 4
    sample.cook("q_integration")                                # captured output: not a terminal
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    sample.cook("q_integration")
    err = capsys.readouterr().err
    assert "2025A1234/S001 reconstruction + q integration" in err  # one read: one bar
    assert "background S000_noise" in err and "/256 [" in err and "frame/s" in err
    with progress.quiet():
        sample.cook("q_integration")
    assert capsys.readouterr().err == ""
    hide(monkeypatch, "tqdm")                                   # no tqdm: no bar, no error
    assert not progress.shows(True)
    with progress.bar(10, "x") as bar:
        bar.update(3)
    sample.cook("q_integration")
    assert capsys.readouterr().err == ""
