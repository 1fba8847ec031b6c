"""Resolution, writing, conflicts, history, diff and as_of of a spice collection."""
import datetime as dt
import os
import pickle
import time

import pytest

import spice
from spice import Field, Registry, TypeSchema
from spice.store import canonical_name

REG = Registry([
    TypeSchema("roi", 1, (Field("x0", "int", "px", 0, minimum=0),
                          Field("x1", "int", "px", 10, minimum=0))),
    TypeSchema("q_range", 1, (Field("q_min", "float", "nm^-1", None, nullable=True,
                                    required=True),)),
], strict=False)


def memory(name="c", **options):
    return spice.Collection(f"memory://{name}-{os.urandom(6).hex()}", registry=REG, **options)


def test_greatest_anchor_at_or_before_key_in_natural_order():
    c = memory()
    c.seed("roi", "", x0=1)
    c.seed("roi", "S9", x0=9)
    c.seed("roi", "S10", x0=10)
    assert [c.view(k).roi.x0 for k in ("S1", "S8", "S9", "S10", "S11", "S99")] == [1, 1, 9, 10,
                                                                                  10, 10]
    assert c.anchors("roi") == ["", "S9", "S10"]


def test_anchor_after_the_last_sample_breaks_nothing():
    c = memory()
    c.seed("roi", "S1", x0=1)
    c.seed("roi", "S999", x0=999)  # after every existing sample
    c.seed("q_range", "S2", q_min=1.0)
    assert c.view("S5").roi.x0 == 1 and c.view("S5").q_range.q_min == 1.0
    assert c.view("S1000").roi.x0 == 999


def test_type_anchored_only_at_later_samples_gives_defaults_before():
    c = memory()
    c.seed("roi", "S5", x0=5)
    early = c.view("S2")
    assert early.roi.x0 == 0 and early.source("roi", "x0") == spice.DEFAULT
    assert early.roi.source() == "default"
    assert c.view("S5").roi.x0 == 5


def test_erased_anchor_falls_back_to_the_previous_anchor():
    c = memory()
    c.seed("roi", "", x0=1)
    c.seed("roi", "S5", x0=5)
    c.erase("roi", "S5", comment="wrong sample")
    view = c.view("S6")
    assert view.roi.x0 == 1 and view.source("roi", "x0").anchor == ""
    c.erase("roi", "")
    assert c.view("S6").roi.x0 == 0  # nothing live left: defaults
    with pytest.raises(spice.SpiceError, match="nothing to erase"):
        c.erase("roi", "S5")
    reseeded = c.seed("roi", "S5", x0=7)  # seeding an erased anchor is allowed
    assert reseeded.revision == 3 and c.view("S6").roi.x0 == 7


def test_samples_named_like_methods_are_plain_keys():
    c = memory()
    for key in ("seed", "history", "view", "all", "spice", "keys", "__init__"):
        c.seed("roi", key, x0=len(key))
        assert c.view(key).roi.x0 == len(key)
    assert c.view("items").roi.x0 == len("history")  # "history" < "items" < "keys"


def test_update_merges_at_the_named_anchor_and_never_changes_earlier_keys():
    c = memory()
    first = c.seed("roi", "", x0=1, x1=20)
    before = c.view("S3").to_dict()
    upd = c.update("roi", "S5", x1=30, comment="wider from S5 on")
    assert upd.anchor == "S5" and upd.revision == 1 and upd.parent == first.uuid
    assert upd.data == {"x0": 1, "x1": 30}
    assert c.view("S3").to_dict() == before
    assert c.view("S7").roi.to_dict() == {"x0": 1, "x1": 30}
    again = c.update("roi", "S5", x0=2)
    assert (again.revision, again.parent, again.data) == (2, upd.uuid, {"x0": 2, "x1": 30})
    assert c.view("S5").source("roi", "x1") == spice.Source("collection", "S5", again.uuid, 2)


def test_fields_can_be_added_later_where_the_schema_allows():
    c = memory()
    c.seed("roi", "", x0=1)
    c.update("roi", "", x1=40)
    assert c.view("S1").roi.to_dict() == {"x0": 1, "x1": 40}
    with pytest.raises(spice.SpiceValidationError, match="unknown field of type 'roi' 'x2'"):
        c.update("roi", "", x2=4)
    free = c.update("notes", "", text="anything")  # unregistered type, registry not strict
    assert c.view("S1").notes.text == "anything" and free.schema_version is None


def test_seed_refuses_to_overwrite_a_live_anchor_unless_replace():
    c = memory()
    c.seed("roi", "S1", x0=1, x1=2)
    with pytest.raises(spice.SpiceError, match="already has revision 1.*update"):
        c.seed("roi", "S1", x0=3)
    replaced = c.seed("roi", "S1", x0=3, replace=True)
    assert replaced.revision == 2 and replaced.data == {"x0": 3}
    assert c.view("S1").roi.x1 == 10  # replaced record no longer sets x1: default


def test_revert_writes_a_new_revision_with_the_old_data():
    c = memory()
    one = c.seed("roi", "S1", x0=1)
    c.update("roi", "S1", x0=2)
    c.erase("roi", "S1")
    back = c.revert(one.uuid[:8])
    assert back.revision == 4 and back.data == {"x0": 1} and "revert to revision 1" in back.comment
    assert c.view("S1").roi.x0 == 1


def test_bad_values_are_refused_at_write_and_nothing_is_stored():
    c = memory()
    with pytest.raises(spice.SpiceValidationError, match=r"roi.x0 = -4 .*integer >= 0 \(px\)"):
        c.seed("roi", "S1", x0=-4)
    assert len(c) == 0


def _conflicting_copy(c, record, **data):
    """A second record with the same (type, anchor, revision) under another file name, as a
    sync tool's 'conflicted copy' would leave it."""
    twin = spice.Record(**{**record.to_dict(), "uuid": spice.records.new_uuid(),
                           "data": {**record.data, **data}})
    c.store.publish("conflicted-copy.yaml", spice.dump_record(twin).encode())
    c.refresh()
    return twin


def test_conflict_raises_naming_both_uuids_and_a_new_revision_resolves_it():
    c = memory()
    c.seed("roi", "", x0=1)
    mine = c.seed("roi", "S2", x0=2)
    theirs = _conflicting_copy(c, mine, x0=3)
    assert c.view("S1").roi.x0 == 1  # an earlier key is not affected
    view = c.view("S2")
    with pytest.raises(spice.SpiceConflict) as info:
        view.roi
    assert mine.uuid in str(info.value) and theirs.uuid in str(info.value)
    assert set(info.value.uuids) == {mine.uuid, theirs.uuid}
    assert view.status == "conflicted" and set(view.conflicts["roi"]) == {mine.uuid, theirs.uuid}
    assert {r.uuid for r in view.candidates("roi")} == {mine.uuid, theirs.uuid}
    assert {r.uuid for r in c.candidates("roi", "S2")} == {mine.uuid, theirs.uuid}
    assert c.conflicts() == [("roi", "S2", [r.uuid for r in c.candidates("roi", "S2")])]
    assert "CONFLICT" in repr(view) and view.q_range.q_min is None  # other types still readable
    with pytest.raises(spice.SpiceConflict, match="base=<uuid>"):
        c.update("roi", "S2", x1=5)
    fixed = c.update("roi", "S2", x1=5, base=theirs.uuid)
    assert fixed.revision == 2 and fixed.parent == theirs.uuid
    assert c.view("S2").roi.to_dict() == {"x0": 3, "x1": 5} and c.conflicts() == []


def test_stale_writer_gets_conflict_or_retries_on_the_new_head(tmp_path):
    a = spice.Collection(str(tmp_path), registry=REG, listing_ttl=None)
    b = spice.Collection(str(tmp_path), registry=REG, listing_ttl=None)
    a.seed("roi", "S1", x0=1)
    b.refresh()
    a.update("roi", "S1", x0=2)  # b has not seen this one
    merged = b.update("roi", "S1", x1=7)  # b probes the head before writing
    assert merged.revision == 3 and merged.data == {"x0": 2, "x1": 7}

    class Racing(spice.LocalStore):
        """Publishes a competing record just before this writer's own publication."""
        def publish(self, name, payload):
            if not getattr(self, "raced", False):
                self.raced = True
                a.update("roi", "S1", x0=9)
            super().publish(name, payload)

    racer = spice.Collection(Racing(str(tmp_path), fsync=False), registry=REG)
    with pytest.raises(spice.SpiceConflict, match="revision 4 was published by record") as info:
        racer.update("roi", "S1", x1=8)
    assert info.value.uuids and info.value.anchor == "S1"
    racer.store.raced = False
    stored = racer.update("roi", "S1", x1=8, retry=True)
    assert stored.revision == 6 and stored.data == {"x0": 9, "x1": 8}
    assert spice.Collection(str(tmp_path), registry=REG).view("S1").roi.to_dict() == stored.data


def test_other_writers_records_appear_on_refresh(tmp_path):
    reader = spice.Collection(str(tmp_path), registry=REG, listing_ttl=None)
    assert reader.view("S1").roi.x0 == 0
    spice.Collection(str(tmp_path), registry=REG).seed("roi", "", x0=4)
    assert reader.view("S1").roi.x0 == 0  # cached listing
    reader.refresh()
    assert reader.view("S1").roi.x0 == 4
    auto = spice.Collection(str(tmp_path), registry=REG, listing_ttl=0)
    assert auto.view("S1").roi.x0 == 4
    spice.Collection(str(tmp_path), registry=REG).update("roi", "", x0=5)
    assert auto.view("S1").roi.x0 == 5


def test_history_diff_and_record_lookup():
    c = memory()
    one = c.seed("roi", "", x0=1, comment="first")
    two = c.update("roi", "S3", x1=11)
    c.update("roi", "", x0=2)
    history = c.history("roi")
    assert [r.uuid for r in history][:2] == [one.uuid, two.uuid]
    assert history.statuses[one.uuid] == "superseded" and history.statuses[two.uuid] == "current"
    assert [r.anchor for r in c.history("roi", anchor="")] == ["", ""]
    assert "first" in repr(history) and "superseded" in history._repr_html_()
    diff = c.diff(one.uuid, two.uuid)
    assert [(d.field, d.before, d.after) for d in diff] == [("x1", spice.diff.ABSENT, 11)]
    views = c.view("S1").diff(c.view("S3"))
    assert [(d.type, d.field, d.before, d.after) for d in views] == [("roi", "x0", 2, 1),
                                                                   ("roi", "x1", 10, 11)]
    assert "S1" in repr(views)
    with pytest.raises(spice.SpiceLookupError, match="no record with uuid"):
        c.get("ffffffff")


def test_as_of_shows_the_records_of_an_earlier_time():
    c = memory()
    c.seed("roi", "", x0=1)
    time.sleep(0.01)
    middle = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.01)
    c.update("roi", "", x0=2)
    view = c.view("S1")
    assert view.roi.x0 == 2 and view.as_of(middle).roi.x0 == 1
    assert view.as_of("2000-01-01T00:00:00Z").roi.x0 == 0
    assert "as of" in repr(view.as_of(middle))


def test_custom_order_for_example_acquisition_time():
    acquired = {"late": 3, "early": 1, "mid": 2}
    c = spice.Collection(f"memory://order-{os.urandom(4).hex()}", registry=REG,
                         order=acquired.__getitem__)
    c.seed("roi", "mid", x0=2)
    assert c.view("early").roi.x0 == 0 and c.view("late").roi.x0 == 2
    with pytest.raises(spice.SpiceError, match="cannot be placed"):
        c.seed("roi", "unknown-key", x0=1)


def test_view_access_source_and_display():
    c = memory()
    r = c.seed("roi", "S1", x0=3)
    view = c.view("S2")
    assert view.roi.x0 == view["roi"]["x0"] == 3 and dict(view.roi) == {"x0": 3, "x1": 10}
    assert view.source("roi", "x0") == ("collection", "S1", r.uuid, 1)
    assert view.source("roi", "x1") == "default" and view.source("roi") == view.source("roi", "x0")
    assert view.roi.unit("x0") == "px" and view.units("roi") == {"x0": "px", "x1": "px"}
    assert list(view) == ["roi", "q_range"] and "roi" in dir(view) and "x0" in dir(view.roi)
    assert view.missing() == ["q_range.q_min"] and view.status == "incomplete"
    with pytest.raises(AttributeError, match="closest: roi"):
        view.roj
    with pytest.raises(KeyError, match="closest: x1, x0"):
        view.roi["x9"]
    assert "<table>" in view._repr_html_() and "collection S1 r1" in repr(view)
    assert view.provenance() == {"roi": [{"scope": "collection", "anchor": "S1", "uuid": r.uuid,
                                          "revision": 1}], "q_range": []}
    same = c.view("S3")
    assert same.fingerprint() == view.fingerprint()
    c.update("roi", "S3", x0=4)
    assert c.view("S3").fingerprint() != view.fingerprint()
    view.roi.to_dict()["x0"] = 99  # copies: the cached record is not changed
    assert c.view("S2").roi.x0 == 3


def test_collections_pickle_and_memory_records_travel_with_them():
    c = memory()
    c.seed("roi", "", x0=6)
    clone = pickle.loads(pickle.dumps(c))
    assert clone.view("S1").roi.x0 == 6 and clone.store.url == c.store.url
    view = pickle.loads(pickle.dumps(c.view("S1")))
    assert view.roi.x0 == 6


def test_generic_fsspec_store_publishes_without_overwriting():
    import fsspec

    fs = fsspec.filesystem("memory")
    store = spice.FsspecStore(fs, f"/generic-{os.urandom(4).hex()}")
    c = spice.Collection(store, registry=REG)
    first = c.seed("roi", "S1", x0=1)
    name = canonical_name("roi", "S1", 1)
    assert store.exists(name) and not [n for n in fs.ls(store.path) if ".tmp-" in n]
    with pytest.raises(FileExistsError):
        store.publish(name, b"format: spice/1\n")
    assert spice.load_record(store.read_bytes(name).decode()) == first
    assert spice.Collection(store, registry=REG).update("roi", "S1", x0=2).revision == 2
    assert canonical_name("roi", "", 3) == "roi..r000003.yaml"
    assert canonical_name("my type", "S/1", 1) == "my~20type.S~2F1.r000001.yaml"
