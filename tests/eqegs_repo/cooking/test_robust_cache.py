"""A result cache that cannot be written, or that holds an entry under the wrong name (issue 20,
M5 and M11; docs/robustness.md, docs/reconstruction.md#caching)."""
import errno
import os
import shutil

import numpy as np
import pytest

from eqegs_repo.cli.main import main
from eqegs_repo.cooking import cache as cache_module
from eqegs_repo.errors import CacheWarning
from tests.helpers.cooktrees import PROPOSAL, repository, seeded_tree

SETTINGS = r"cache_url \(Repository\(\.\.\., cache_url=\.\.\.\), --cache-url, or cache_url in the tree's eqegs\.yaml\) or \$EQEGS_CACHE_DIR"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The tree (its cache under ``.cache``) and the reconstruction and q integration cooked."""
    repo = seeded_tree(tmp_path_factory.mktemp("robust_cache"))
    sample = repo[PROPOSAL]["S001"]
    expected = {step: sample.cook(step) for step in ("reconstruction", "q_integration")}
    return repo.root, expected


def uncached(root, cache_url):
    """A Repository over ``root`` (same spice) whose cache is ``cache_url``."""
    repo = repository(root)
    repo.cache_url = cache_url
    return repo


def _assert_same(ds, expected):
    assert ds.attrs["fingerprint"] == expected.attrs["fingerprint"]
    for name in expected.data_vars:
        np.testing.assert_array_equal(ds[name].values, expected[name].values)


# --- M5: a cache that fails to write never loses the result -----------------------------------
def _a_file(tmp_path, monkeypatch):
    (tmp_path / "cache").write_text("not a folder")
    return str(tmp_path / "cache"), "NotADirectoryError|FileExistsError"


def _home_a_file(tmp_path, monkeypatch):
    """The default cache (no setting) in a home that cannot hold folders."""
    (tmp_path / "home").write_text("a home that is a file")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("EQEGS_CACHE_DIR", raising=False)
    assert cache_module.default_cache_url() == str(tmp_path / "home" / ".cache" / "eqegs_repo")
    return cache_module.default_cache_url(), "NotADirectoryError"


@pytest.mark.parametrize("make", [_a_file, _home_a_file], ids=["cache path is a file", "home is a file"])
def test_an_unwritable_cache_warns_naming_it_and_returns_the_result(tree, tmp_path, monkeypatch, make):
    root, expected = tree
    url, reason = make(tmp_path, monkeypatch)
    repo = uncached(root, url)
    with pytest.warns(CacheWarning, match=rf"cannot write the result cache {url} \(.*({reason}).*\); results are "
                                          rf"computed and returned but not cached\. Choose another cache with "
                                          rf"{SETTINGS}, or cache_url=False for none") as caught:
        ds = repo[PROPOSAL]["S001"].cook("q_integration")
    _assert_same(ds, expected["q_integration"])
    assert len([w for w in caught if w.category is CacheWarning]) == 1  # once per cache, not per step
    assert repo.cache.write_failure is not None


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   OSError(errno.EROFS, "Read-only file system")], ids=["disk full", "read-only"])
def test_a_write_failing_halfway_leaves_no_temporary_file(tree, tmp_path, monkeypatch, error):
    root, expected = tree
    repo = uncached(root, str(tmp_path / "cache"))
    real = cache_module.write_dataset

    def half_then_fail(ds, handle, entry=None):
        handle.write(b"PK\x03\x04 half an entry")
        raise error

    monkeypatch.setattr(cache_module, "write_dataset", half_then_fail)
    with pytest.warns(CacheWarning, match=rf"{tmp_path / 'cache'} .*OSError: \[Errno {error.errno}\]"):
        ds = repo[PROPOSAL]["S001"].cook("reconstruction")
    _assert_same(ds, expected["reconstruction"])
    assert [files for _, _, files in os.walk(tmp_path / "cache") if files] == []  # no .tmp-* left
    monkeypatch.setattr(cache_module, "write_dataset", real)  # the disk has room again: cached
    again = uncached(root, str(tmp_path / "cache"))[PROPOSAL]["S001"]
    again.cook("reconstruction")
    assert again.cache_status()["reconstruction"] == "fresh"


def test_eqegs_cook_with_an_unwritable_cache_prints_the_result_and_one_warning(tree, tmp_path, capsys):
    root, _ = tree
    (tmp_path / "cache").write_text("not a folder")
    status = main(["cook", f"{root}/{{proposal}}/{{sample}}", PROPOSAL, "S001", "--step", "reconstruction",
                   "--spice-url", repository(root).spice_url, "--cache-url", str(tmp_path / "cache")])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    warnings = [line for line in captured.err.splitlines() if line.startswith("eqegs: warning:")]
    assert len(warnings) == 1 and f"cannot write the result cache {tmp_path / 'cache'}" in warnings[0]
    assert "EQEGS_CACHE_DIR" in warnings[0] and "Traceback" not in captured.err
    assert "reconstruction" in captured.out


# --- M11: an entry is served only under its own key and step -----------------------------------
@pytest.mark.parametrize("source, target", [("q_integration", "reconstruction"),
                                            ("reconstruction", "q_integration")])
def test_an_entry_of_another_step_under_this_key_is_a_miss_and_cooked_again(tree, tmp_path, source, target):
    root, expected = tree
    shutil.copytree(f"{root}/.cache", tmp_path / "cache")
    repo = uncached(root, str(tmp_path / "cache"))
    sample = repo[PROPOSAL]["S001"]
    cache = repo.cache
    entry = {}
    for step in (source, target):
        folder = cache.folder(sample.path, PROPOSAL, "S001", step)
        entry[step] = (folder, expected[step].attrs["fingerprint"])
        assert cache.load(*entry[step]) is not None
    shutil.copyfile(f"{entry[source][0]}/{entry[source][1]}.npz", f"{entry[target][0]}/{entry[target][1]}.npz")
    assert cache.load(*entry[target]) is None  # once: the other step's dataset
    assert sample.cache_status()[target] == "fresh"  # listed by name; served only after the check
    _assert_same(sample.cook(target), expected[target])
    _assert_same(cache.load(*entry[target]), expected[target])  # rewritten with its own key


def test_an_entry_renamed_to_another_fingerprint_of_its_step_is_a_miss(tree, tmp_path):
    root, expected = tree
    cache = cache_module.DatasetCache(str(tmp_path / "cache"))
    folder = f"{cache.root}/S001/reconstruction"
    ds = expected["reconstruction"]
    assert cache.save(folder, "a" * 64, ds) is not None
    shutil.copyfile(f"{folder}/{'a' * 64}.npz", f"{folder}/{'b' * 64}.npz")
    assert cache.load(folder, "a" * 64).attrs == ds.attrs
    assert cache.load(folder, "b" * 64) is None
    assert cache.load(f"{cache.root}/S001/q_integration", "a" * 64) is None  # same key, other step folder
    os.makedirs(f"{cache.root}/S001/q_integration")
    shutil.copyfile(f"{folder}/{'a' * 64}.npz", f"{cache.root}/S001/q_integration/{'a' * 64}.npz")
    assert cache.load(f"{cache.root}/S001/q_integration", "a" * 64) is None


def test_an_entry_without_its_key_written_before_the_check_is_a_miss(tree, tmp_path):
    root, expected = tree
    cache = cache_module.DatasetCache(str(tmp_path / "cache"))
    folder, key = f"{cache.root}/S001/reconstruction", "c" * 64
    os.makedirs(folder)
    with open(f"{folder}/{key}.npz", "wb") as handle:
        cache_module.write_dataset(expected["reconstruction"], handle)  # no entry: an older writer
    assert cache.load(folder, key) is None
