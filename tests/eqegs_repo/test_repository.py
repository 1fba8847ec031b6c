import pickle

import fsspec
import pytest

from eqegs_repo import BadInput, HandleNotFound, KeyNotFound, Repository
from tests.helpers.treeutil import SpyMemoryFS, write_sample, write_tree


@pytest.fixture
def tree(memroot):
    fs, root = memroot
    write_tree(fs, root, {"2025A1234": ["S10", "S2", "S1", "all", "spice", "s-1", "s.1"],
                          "2025B5678": ["S001"]})
    fs.makedirs(f"{root}/2025A1234/download", exist_ok=True)
    fs.makedirs(f"{root}/2025A1234/.hidden/train_integrated", exist_ok=True)
    fs.pipe(f"{root}/2025A1234/.hidden/train_integrated.json", b"{}")
    fs.makedirs(f"{root}/2025A1234/notes", exist_ok=True)          # no marker: not a sample
    fs.makedirs(f"{root}/2025C0000/S1", exist_ok=True)               # no sample: not a proposal
    return fs, root


def repo_of(root, **kw):
    return Repository(f"memory://{root}/{{proposal}}/{{sample}}", **kw)


def test_listing_in_natural_order_without_non_samples(tree):
    repo = repo_of(tree[1])
    assert repo.all() == {"2025A1234": "p2025A1234", "2025B5678": "p2025B5678"}
    prop = repo.p2025A1234
    assert list(prop.all()) == ["all", "S1", "S2", "S10", "s-1", "s.1", "spice"]  # case-insensitive


def test_handles_never_hide_methods_and_collisions_stay_reachable(tree):
    prop = repo_of(tree[1])["2025A1234"]
    handles = prop.all()
    assert handles["all"] == "s_all" and handles["spice"] == "s_spice"
    assert callable(prop.all) and prop.s_all.key == "all" and prop.s_spice.key == "spice"
    assert handles["s-1"] != handles["s.1"]
    assert {getattr(prop, handles[k]).key for k in ("s-1", "s.1")} == {"s-1", "s.1"}
    assert prop["s.1"].key == "s.1"


def test_dir_and_key_completion_list_handles_and_keys(tree):
    repo = repo_of(tree[1])
    assert {"p2025A1234", "p2025B5678", "all", "table"} <= set(dir(repo))
    prop = repo["2025A1234"]
    assert {"S1", "S10", "s_all", "table", "refresh"} <= set(dir(prop))
    assert prop._ipython_key_completions_() == list(prop.all())


def test_unknown_keys_name_the_closest_ones(tree):
    prop = repo_of(tree[1])["2025A1234"]
    with pytest.raises(KeyNotFound) as exc:
        prop["S11"]
    assert isinstance(exc.value, KeyError) and "'S1'" in str(exc.value) and "'S10'" in str(exc.value)
    with pytest.raises(HandleNotFound) as exc:
        prop.S3
    assert isinstance(exc.value, AttributeError) and "S2" in str(exc.value)
    assert not hasattr(prop, "S3")
    with pytest.raises(BadInput, match="must not contain"):
        prop["../2025B5678"]


def test_listing_is_cached_until_refresh(tree):
    fs, root = tree
    repo = repo_of(root)
    prop = repo["2025B5678"]
    assert list(prop.all()) == ["S001"]
    write_sample(fs, f"{root}/2025B5678/S002")
    assert list(prop.all()) == ["S001"]
    repo.refresh()
    assert list(prop.all()) == ["S001", "S002"]


def test_listing_and_dir_open_no_array_file(memroot):
    fs, root = memroot
    write_tree(fs, root, {f"2025A{p:04d}": [f"S{s:03d}" for s in range(5)] for p in range(4)})
    SpyMemoryFS.opened.clear()
    repo = Repository(f"spymem://{root}/{{proposal}}/{{sample}}")
    dir(repo)
    for key in repo.all():
        dir(repo[key])
        repo[key].table(check=False)
    assert not [p for p in SpyMemoryFS.opened if p.endswith(".npy")]
    assert all(p.endswith("train_integrated.json") for p in SpyMemoryFS.opened)


def test_missing_root_and_unreadable_folders_are_clear_errors(tree):
    fs, root = tree
    with pytest.raises(BadInput, match="does not exist"):
        repo_of(root + "_nowhere")
    SpyMemoryFS.unreadable = {f"{root}/2025B5678"}
    try:
        repo = Repository(f"spymem://{root}/{{proposal}}/{{sample}}")
        assert "2025B5678" in repo.all()       # shown, not silently dropped
        table = repo.table().set_index("key")
        assert "cannot be read" in table.loc["2025B5678", "problem"]
        assert table.loc["2025A1234", "samples"] == 7
        with pytest.raises(BadInput, match=f"{root}/2025B5678 cannot be read"):
            repo["2025B5678"].all()
        SpyMemoryFS.unreadable = {root}
        with pytest.raises(BadInput, match="cannot be read"):
            Repository(f"spymem://{root}/{{proposal}}/{{sample}}").all()
    finally:
        SpyMemoryFS.unreadable = set()


def test_url_fields_and_local_folders(tmp_path):
    fs = fsspec.filesystem("file")
    write_sample(fs, f"{tmp_path}/UserData/u0000001/EQEGS/2025A1234/S1")
    repo = Repository(str(tmp_path) + "/UserData/{account}/EQEGS/{proposal}/{sample}", account="u0000001")
    assert repo.p2025A1234.S1.info()["n_frames"] == 6
    with pytest.raises(BadInput, match="account"):
        Repository(str(tmp_path) + "/UserData/{account}/EQEGS/{proposal}/{sample}")


def test_objects_pickle_and_work_after_unpickling(tree):
    repo = repo_of(tree[1])
    sample = repo.p2025A1234.S2
    sample.raw  # fills caches that must not travel
    again = pickle.loads(pickle.dumps(sample))
    assert again.key == "S2" and again.proposal.key == "2025A1234"
    assert (again.raw.counts.values == sample.raw.counts.values).all()
    assert pickle.loads(pickle.dumps(repo)).all() == repo.all()


def test_reprs_are_readable(tree):
    repo = repo_of(tree[1])
    assert "2 proposals" in repr(repo) and "p2025A1234" in repr(repo)
    prop = repo.p2025A1234
    assert "7 samples" in repr(prop) and "S1 S2 S10" in repr(prop)
    assert repr(prop.S1) == "<Sample 2025A1234/S1: 6 frames, 3 sensors of 4 x 2>"
    assert "<table" in repo._repr_html_() and "S10" in prop._repr_html_()
    assert "trains_integrated" in prop.S1._repr_html_()


def test_refresh_shows_records_of_another_writer(tmp_path):
    fs = fsspec.filesystem("file")
    write_sample(fs, f"{tmp_path}/P1/S1")
    mine = Repository(str(tmp_path) + "/{proposal}/{sample}")
    other = Repository(str(tmp_path) + "/{proposal}/{sample}")
    assert mine["P1"].S1.spice.q_range.q_min is None
    other["P1"].spice.seed("q_range", q_min=10.0, q_max=14.0)
    mine.refresh()
    assert mine["P1"].S1.spice.q_range.q_min == 10.0
