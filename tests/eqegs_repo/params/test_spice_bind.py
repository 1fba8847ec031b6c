"""spice_bind: collections and views for Repository/Proposal/Sample, data_table.csv import."""
import os
import pickle

import fsspec

import spice
from eqegs_repo import Repository
from eqegs_repo.params import binding as spice_bind
from eqegs_repo.params import data_table
from tests.helpers import treeutil


class FakeRepository:
    """Just the attributes spice_bind relies on."""

    def __init__(self, root, spice_url=None, proposals=None):
        self.fs = fsspec.filesystem("file")
        self.root = str(root)
        self.spice_url = spice_url
        self._proposals = {key: FakeProposal(self, key, samples)
                           for key, samples in (proposals or {}).items()}
        self._spice = None

    def __getitem__(self, key):
        return self._proposals[key]

    @property
    def spice(self):
        if self._spice is None:
            self._spice = spice_bind.repository_spice(self)
        return self._spice


class FakeProposal:
    def __init__(self, repository, key, samples):
        self.repository, self.key = repository, key
        self.path = f"{repository.root}/{key}"
        self._samples = {s: FakeSample(self, s) for s in samples}
        self._spice = None

    def sample_keys(self):
        return spice.natural_sorted(self._samples)

    def __getitem__(self, key):
        return self._samples[key]

    @property
    def spice(self):
        if self._spice is None:
            self._spice = spice_bind.proposal_spice(self)
        return self._spice


class FakeSample:
    def __init__(self, proposal, key):
        self.proposal, self.key = proposal, key

    @property
    def spice(self):
        return spice_bind.sample_spice(self)


TREE = {"2025A0001": ["S1", "S2", "S9", "S10"], "2025B0002": ["S001", "S002"]}


def test_default_stores_are_dot_spice_folders_in_the_tree(tmp_path):
    repo = FakeRepository(tmp_path, proposals=TREE)
    repo.spice.seed("q_range", "", q_min=10.0, q_max=14.0)
    repo["2025A0001"].spice.seed("roi", "S9", x0=1, y0=2, x1=3, y1=4)
    assert os.listdir(tmp_path / ".spice") == ["q_range..r000001.yaml"]
    assert os.listdir(tmp_path / "2025A0001" / ".spice") == ["roi.S9.r000001.yaml"]


def test_spice_url_layout_and_memory_stores_are_distinct_per_repository(tmp_path):
    repo = FakeRepository(tmp_path, spice_url=str(tmp_path / "elsewhere"), proposals=TREE)
    repo.spice.seed("sp_param", "", start_cut_frames=7)
    repo["2025B0002"].spice.seed("sp_param", "S002", start_cut_frames=9)
    assert os.path.exists(tmp_path / "elsewhere/repository/sp_param..r000001.yaml")
    assert os.path.exists(tmp_path / "elsewhere/proposals/2025B0002/sp_param.S002.r000001.yaml")
    one = FakeRepository(tmp_path, spice_url="memory://", proposals=TREE)
    two = FakeRepository(tmp_path, spice_url="memory://", proposals=TREE)
    one.spice.seed("sp_param", "", start_cut_frames=1)
    assert len(two.spice) == 0 and len(spice_bind.repository_spice(one)) == 1
    shared = "memory://shared-" + os.urandom(4).hex()
    FakeRepository(tmp_path, spice_url=shared).spice.seed("sp_param", "", start_cut_frames=2)
    assert len(FakeRepository(tmp_path, spice_url=shared).spice) == 1
    assert spice_bind.resolve_spice_url("memory://") != spice_bind.resolve_spice_url("memory://")
    assert spice_bind.resolve_spice_url("/x") == "/x" and spice_bind.resolve_spice_url(None) is None


def test_sample_view_layers_defaults_repository_and_proposal(tmp_path):
    repo = FakeRepository(tmp_path, spice_url="memory://", proposals=TREE)
    top = repo.spice.seed("q_range", "", q_min=10.0, q_max=14.0)
    repo.spice.update("q_range", "2025B0002", q_max=20.0)
    prop = repo["2025A0001"]
    roi = prop.spice.seed("roi", "S9", x0=1, y0=2, x1=30, y1=40)
    prop.spice.seed("q_range", "S10", q_min=11.0)
    s9, s10 = prop["S9"].spice, prop["S10"].spice
    assert (s9.roi.x0, s9["q_range"]["q_min"]) == (1, 10.0)
    assert s9.source("roi", "x1") == ("proposal", "S9", roi.uuid, 1)
    assert s9.source("q_range", "q_max") == ("repository", "", top.uuid, 1)
    assert s9.source("sp_param", "start_cut_frames") == "default"
    assert s10.q_range.to_dict() == {"q_min": 11.0, "q_max": 14.0}
    assert prop["S2"].spice.roi.x0 is None  # roi only anchored at later samples: auto
    other = repo["2025B0002"]["S001"].spice
    assert other.q_range.q_max == 20.0 and other.roi.x0 is None
    assert s9.status == "complete" and "repository @ '2025A0001' < proposal @ 'S9'" in repr(s9)
    clone = pickle.loads(pickle.dumps(prop.spice))
    assert clone.view("S9").roi.x0 == 1 and clone.proposal.key == "2025A0001"


DATA_TABLE = """sample_name, velocity, angle, comment(Do not include commas)
001,1,0,this is comment example of Sample
002,2,1,No.002's comment, with a comma
003,1,0,no such sample
"""


def test_import_data_table_writes_calibration_records_and_reports_the_rest(tmp_path):
    repo = FakeRepository(tmp_path, spice_url="memory://", proposals=TREE)
    prop = repo["2025B0002"]
    path = tmp_path / "data_table.csv"
    path.write_text(DATA_TABLE)
    report = prop.spice.import_data_table(str(path))
    assert [(r.sample_name, key) for r, key, _ in report.written] == [("001", "S001"),
                                                                      ("002", "S002")]
    assert [r.sample_name for r in report.unmatched] == ["003"]
    assert any("line 3: the comment contains a comma; kept \"No.002's comment\"" in p
               for p in report.problems)
    assert "no matching sample" in repr(report)
    s2 = prop["S002"].spice.calibration
    assert (s2.velocity_number, s2.angle_number, s2.note) == (2, 1, "No.002's comment")
    assert prop["S001"].spice.calibration.note == "this is comment example of Sample"
    again = prop.spice.import_data_table(str(path))
    assert again.written == [] and len(again.unchanged) == 2 and len(prop.spice) == 2


def test_data_table_matching_rules():
    rows, notes, bad = data_table.parse_data_table("1,1,0\n2,1,0\n3,x,0\n", "t.csv")
    assert [r.sample_name for r in rows] == ["1", "2"] and notes == []
    assert [(b.line, b.column, b.value) for b in bad] == [(3, "velocity", "x")]
    matched, unmatched, ambiguous = data_table.match_rows(rows, ["S01", "S1", "S002"])
    assert matched == [(rows[0], "S1"), (rows[1], "S002")]  # exact digits first, then number
    assert unmatched == [] and ambiguous == []
    matched, _, ambiguous = data_table.match_rows(rows, ["A01", "B001", "S002"])
    assert ambiguous == [(rows[0], ["A01", "B001"])] and matched == [(rows[1], "S002")]


def test_through_the_real_repository(tmp_path):
    fs = fsspec.filesystem("file")
    treeutil.write_tree(fs, str(tmp_path), {"2025A1234": ["S9", "S10", "seed"]})
    repo = Repository(str(tmp_path) + "/{proposal}/{sample}")
    prop = repo["2025A1234"]
    prop.spice.seed("roi", anchor="S10", x0=150, y0=280, x1=224, y1=328)
    repo.spice.seed("q_range", "2025A1234", q_min=10.1, q_max=14.1)
    assert list(repo.all()) == ["2025A1234"] and prop.sample_keys() == ["S9", "S10", "seed"]
    view = prop["S10"].spice
    assert view.roi.x0 == 150 and view.q_range.q_max == 14.1 and prop["S9"].spice.roi.x0 is None
    assert prop["seed"].spice.roi.x1 == 224  # a sample named like a method; "seed" > "S10"
    assert view.source("q_range", "q_min").scope == "repository"
    memory_repo = Repository(str(tmp_path) + "/{proposal}/{sample}", spice_url="memory://")
    assert len(memory_repo.spice) == 0 and len(memory_repo["2025A1234"].spice) == 0
    copy = pickle.loads(pickle.dumps(repo))
    assert copy["2025A1234"]["S10"].spice.roi.y1 == 328


def test_a_conflict_passes_through_cooking_as_a_spice_conflict(tmp_path):
    """sample.cook raises a SpiceConflict (uuids, type, anchor) that names the sample and the
    records, and is a BadInput too; it survives pickling (Dask)."""
    import pytest

    from eqegs_repo.errors import BadInput
    from eqegs_repo.params.effective import ParameterConflict

    treeutil.write_tree(fsspec.filesystem("file"), str(tmp_path), {"2025A0001": ["S1", "S2"]})
    repo = Repository(f"{tmp_path}/{{proposal}}/{{sample}}", spice_url="memory://")
    prop = repo["2025A0001"]
    mine = prop.spice.seed("roi", "S1", x0=1, y0=1, x1=3, y1=3)
    twin = spice.Record(**{**mine.to_dict(), "uuid": "11111111-2222-3333-4444-555555555555",
                           "data": {**mine.data, "x1": 2}})
    prop.spice.store.publish("conflicted-copy.yaml", spice.dump_record(twin).encode())
    prop.spice.refresh()
    with pytest.raises(spice.SpiceConflict) as info:
        prop["S2"].cook("reconstruction", use_cache=False)
    error = info.value
    assert isinstance(error, BadInput) and isinstance(error, ParameterConflict)
    assert set(error.uuids) == {mine.uuid, twin.uuid} and (error.type, error.anchor) == (
        "roi", "S1")
    message = str(error)
    assert message.startswith("spice of '2025A0001/S2': roi is conflicted")
    assert mine.uuid in message and twin.uuid in message and "base=<uuid>" in message
    assert isinstance(error.__cause__, spice.SpiceConflict)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ParameterConflict and copy.uuids == error.uuids
    assert str(copy) == message
