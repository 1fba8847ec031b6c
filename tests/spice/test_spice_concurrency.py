"""Many processes writing one collection at once, and writers killed mid-write."""
import multiprocessing
import os
import signal
import time

import pytest

import spice
from spice.store import TEMP_PREFIX

N_PROCESSES, N_WRITES = 8, 50
TYPES, ANCHORS = ("alpha", "beta"), ("", "S1", "S10")


def _writer(folder, worker, queue):
    """50 updates/seeds/erases on shared and private (type, anchor) slots; reports outcomes."""
    collection = spice.Collection(folder, listing_ttl=0.05, author=f"w{worker}")
    collection.store.fsync = False
    stored, refused, nothing_to_erase = [], 0, 0
    for i in range(N_WRITES):
        type_name = TYPES[(worker + i) % 2]
        anchor = ANCHORS[i % 3] if i % 4 else f"P{worker}"  # shared and private anchors
        try:
            if i % 17 == 16:
                record = collection.erase(type_name, anchor)
            else:
                record = collection.update(type_name, anchor, value=i, worker=worker)
        except spice.SpiceConflict:
            refused += 1
            continue
        except spice.SpiceError as exc:  # erase of an anchor with no live record: not a race
            assert "nothing to erase" in str(exc)
            nothing_to_erase += 1
            continue
        stored.append(record.uuid)
    queue.put((worker, stored, refused, nothing_to_erase))


def test_eight_processes_fifty_writes_each(tmp_path):
    folder = str(tmp_path / "store")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_writer, args=(folder, w, queue))
               for w in range(N_PROCESSES)]
    for process in workers:
        process.start()
    results = [queue.get(timeout=60) for _ in workers]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    stored = [u for _, uuids, _, _ in results for u in uuids]
    refused = sum(r[2] for r in results)
    assert len(stored) == len(set(stored))
    assert len(stored) + refused + sum(r[3] for r in results) == N_PROCESSES * N_WRITES
    print(f"{len(stored)} stored, {refused} refused with SpiceConflict")

    names = os.listdir(folder)
    assert not [n for n in names if n.startswith(TEMP_PREFIX)]  # no stray temp file
    fresh = spice.Collection(folder)
    assert fresh.problems == []  # every file parses: nothing half-written
    assert {r.uuid for r in fresh.records()} == set(stored)  # stored == acknowledged
    assert len(names) == len(stored) and fresh.conflicts() == []
    for type_name in TYPES:
        for anchor in fresh.anchors(type_name):
            revisions = [r.revision for r in fresh.records(type_name, anchor)]
            assert revisions == list(range(1, len(revisions) + 1))  # no gaps, no doubles
            head = fresh.records(type_name, anchor)[-1]
            resolved = fresh.index().resolve(type_name, anchor)
            if not head.erased:
                assert resolved.record == head
                assert fresh.view(anchor)[type_name].to_dict() == head.data


def _endless_writer(folder):
    collection = spice.Collection(folder)
    i = 0
    while True:
        collection.update("alpha", f"S{i % 5}", value=i, blob="x" * 20000)
        i += 1


def test_writer_killed_mid_write_leaves_a_readable_store(tmp_path):
    folder = str(tmp_path / "store")
    context = multiprocessing.get_context("fork")
    process = context.Process(target=_endless_writer, args=(folder,))
    process.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len([
            n for n in (os.listdir(folder) if os.path.isdir(folder) else [])
            if n.endswith(".yaml")]) < 20:  # published records, not temp files
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.join(timeout=10)
    collection = spice.Collection(folder)
    assert collection.problems == []
    assert len(collection) >= 20
    for key in ("S0", "S4"):
        assert collection.view(key).alpha.blob == "x" * 20000


def test_crash_between_temp_write_and_publication(tmp_path, monkeypatch):
    """The writer dies after writing half of its temp file: the record never appears."""
    folder = str(tmp_path / "store")
    collection = spice.Collection(folder)
    collection.seed("alpha", "", value=1)

    def dying_link(source, target):
        with open(source, "r+b") as handle:
            handle.truncate(10)
        raise KeyboardInterrupt("simulated crash before publication")

    monkeypatch.setattr(os, "link", dying_link)
    monkeypatch.setattr(os, "unlink", lambda path: None)  # the crash skips the clean-up too
    with pytest.raises(KeyboardInterrupt):
        collection.update("alpha", "", value=2)
    monkeypatch.undo()
    assert [n for n in os.listdir(folder) if n.startswith(TEMP_PREFIX)]  # stray temp left
    fresh = spice.Collection(folder)
    assert fresh.problems == [] and fresh.view("S1").alpha.value == 1 and len(fresh) == 1
    assert fresh.update("alpha", "", value=3).revision == 2


class _SlowDisk(spice.LocalStore):
    """Publication takes 2 ms longer (a slow or busy disk), which widens every race."""

    def publish(self, name, payload):
        time.sleep(0.002)
        super().publish(name, payload)


def _same_anchor_writer(folder, worker, queue):
    """50 updates of one (type, anchor) with retry=True; reports the failures."""
    collection = spice.Collection(_SlowDisk(folder, fsync=False), listing_ttl=0.05,
                                  author=f"w{worker}")
    failures = []
    for i in range(N_WRITES):
        try:
            collection.update("alpha", "S1", retry=True, **{f"w{worker}": i})
        except spice.SpiceConflict as exc:
            failures.append(str(exc))
    queue.put(failures)


def test_retry_makes_every_update_of_one_anchor_succeed(tmp_path):
    """Row 11: 8 processes x 50 updates of the same anchor with retry=True, on a slow disk: no
    failure, no lost field, revisions 1..400 without gaps (10 retries without a wait, as
    before, lost about 100 of them)."""
    folder = str(tmp_path / "store")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_same_anchor_writer, args=(folder, w, queue))
               for w in range(N_PROCESSES)]
    for process in workers:
        process.start()
    failures = [message for _ in workers for message in queue.get(timeout=120)]
    for process in workers:
        process.join(timeout=60)
    assert failures == []
    fresh = spice.Collection(folder)
    revisions = [r.revision for r in fresh.records("alpha", "S1")]
    assert revisions == list(range(1, N_PROCESSES * N_WRITES + 1))
    assert fresh.view("S1").alpha.to_dict() == {f"w{w}": N_WRITES - 1
                                                for w in range(N_PROCESSES)}


class _AlwaysBeaten(spice.LocalStore):
    """Another writer publishes the very name this writer is about to publish, every time."""

    def publish(self, name, payload):
        super().publish(name, payload.replace(b"uuid: ", b"uuid: x", 1))
        super().publish(name, payload)


def test_retry_backoff_is_bounded_and_the_message_says_what_was_tried(tmp_path, monkeypatch):
    from spice import writing as module

    waits = []
    monkeypatch.setattr(module.time, "sleep", waits.append)
    beaten = spice.Collection(_AlwaysBeaten(str(tmp_path), fsync=False))
    with pytest.raises(spice.SpiceConflict, match="pass retry=True") as info:
        beaten.update("alpha", "S1", value=1)
    assert waits == [] and info.value.uuids
    with pytest.raises(spice.SpiceConflict) as info:
        beaten.update("alpha", "S1", value=2, retry=True)
    message = str(info.value)
    attempts = module.DEFAULT_RETRIES + 1
    assert f"gave up after {attempts} attempts (retry=True)" in message
    assert "pass retry=True" not in message and "nothing was stored" in message
    assert len(waits) == module.DEFAULT_RETRIES
    assert all(0 <= w <= module.BACKOFF_MAX for w in waits) and sum(waits) < 7.1
    with pytest.raises(spice.SpiceConflict, match=r"gave up after 3 attempts \(retry=2\)"):
        beaten.update("alpha", "S1", value=3, retry=2)
    assert all(r.uuid.startswith("x") for r in beaten.records())  # none of this writer's


def test_update_from_a_stale_listing_inherits_the_newest_values(tmp_path):
    """Row 10: a listing up to listing_ttl old never re-asserts an old value of an earlier
    anchor: values inherited from another anchor come from a fresh listing."""
    stale = spice.Collection(str(tmp_path), listing_ttl=60)
    stale.seed("e", "", n_mc=200, rebin=1)
    assert stale.view("S003").e.n_mc == 200  # listed now; trusted for 60 s
    spice.Collection(str(tmp_path)).update("e", "", n_mc=777)
    record = stale.update("e", "S003", rebin=2)
    assert record.data == {"n_mc": 777, "rebin": 2}


class _RacedStore(spice.LocalStore):
    """Runs ``race()`` just before the first publication of a name starting with ``when``."""

    def __init__(self, path, when, race):
        super().__init__(path, fsync=False)
        self.when, self.race = when, race

    def publish(self, name, payload):
        if self.race is not None and name.startswith(self.when):
            race, self.race = self.race, None
            race()
        super().publish(name, payload)


@pytest.mark.parametrize("race, lost", [
    (lambda other: other.update("e", "", n_mc=999), "n_mc: 777 -> 999"),
    (lambda other: other.seed("e", "S002", n_mc=5), "n_mc: 777 -> 5"),
    (lambda other: other.erase("e", ""), "n_mc: 777 -> '(absent)'"),
], ids=["earlier-anchor-updated", "anchor-inserted-between", "earlier-anchor-erased"])
def test_inherited_value_changed_during_the_write_is_a_conflict(tmp_path, race, lost):
    """Row 10: a change of what the anchor inherits, published between the fresh listing
    and the publication, is a SpiceConflict naming the field; retry=True takes it over."""

    def raced(folder):
        other = spice.Collection(str(folder))
        base = other.seed("e", "", n_mc=777, rebin=1)
        return base, spice.Collection(_RacedStore(str(folder), "e.S003.", lambda: race(other)))

    base, writer = raced(tmp_path / "plain")
    with pytest.raises(spice.SpiceConflict) as info:
        writer.update("e", "S003", rebin=2)
    message = str(info.value)
    stored = writer.records("e", "S003")
    assert len(stored) == 1 and stored[0].data == {"n_mc": 777, "rebin": 2}
    assert f"revision 1 ({stored[0].uuid}) was stored" in message and lost in message
    assert "Update 'S003' again" in message and "retry=True" in message
    assert stored[0].uuid in info.value.uuids and base.uuid not in info.value.uuids

    _, writer = raced(tmp_path / "retry")  # the same race: one more revision follows
    record = writer.update("e", "S003", rebin=2, retry=True)
    first = writer.records("e", "S003")[0]
    now = spice.Collection(str(tmp_path / "retry")).view("S003").e.to_dict()
    assert record.revision == 2 and record.parent == first.uuid and record.data == now
    assert now["rebin"] == 2 and now.get("n_mc") != 777


def test_a_change_only_to_changed_fields_is_no_conflict(tmp_path):
    other = spice.Collection(str(tmp_path))
    other.seed("e", "", n_mc=777, rebin=1)
    writer = spice.Collection(_RacedStore(str(tmp_path), "e.S003.",
                                          lambda: other.update("e", "", rebin=5)))
    assert writer.update("e", "S003", rebin=2).data == {"n_mc": 777, "rebin": 2}


def test_follow_up_is_refused_when_the_anchor_was_written_meanwhile(tmp_path):
    other = spice.Collection(str(tmp_path))
    other.seed("e", "", n_mc=777, rebin=1)

    class Store(spice.LocalStore):
        def publish(self, name, payload):
            super().publish(name, payload)
            if name == "e.S003.r000001.yaml":  # after this writer's record: two other writers
                other.update("e", "", n_mc=1)
                other.update("e", "S003", rebin=9)

    writer = spice.Collection(Store(str(tmp_path), fsync=False))
    with pytest.raises(spice.SpiceConflict, match="was written again meanwhile") as info:
        writer.update("e", "S003", rebin=2, retry=True)
    assert info.value.uuids == [other.records("e", "S003")[-1].uuid]
    assert [r.data["rebin"] for r in other.records("e", "S003")] == [2, 9]


def test_earlier_anchor_conflicted_during_the_write_is_a_conflict_even_with_retry(tmp_path):
    other = spice.Collection(str(tmp_path))
    base = other.seed("e", "", n_mc=777, rebin=1)
    twin = spice.Record(**{**base.to_dict(), "uuid": "twin-0000", "data": {"n_mc": 1}})
    race = lambda: other.store.publish("copy.yaml", spice.dump_record(twin).encode())  # noqa: E731
    writer = spice.Collection(_RacedStore(str(tmp_path), "e.S003.", race))
    with pytest.raises(spice.SpiceConflict, match="conflicting records") as info:
        writer.update("e", "S003", rebin=2, retry=True)
    assert {base.uuid, "twin-0000"} < set(info.value.uuids)
    assert len(writer.records("e", "S003")) == 1  # no follow-up onto a conflicted anchor
