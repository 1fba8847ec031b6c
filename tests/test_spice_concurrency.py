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
