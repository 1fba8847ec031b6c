"""Writes that fail leave nothing behind, and a filesystem without hard links still publishes
exclusively (docs/robustness.md, issue 20: L3, L9)."""
import errno
import os
import subprocess
import sys
import textwrap

import pytest

import spice
from spice import store as spice_store
from tests.helpers import ROOT


def leftovers(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith(spice_store.TEMP_PREFIX))


def test_a_write_refused_as_too_large_leaves_no_temporary_file(tmp_path):
    # a real "File too large" (EFBIG): a file size limit in a child process, SIGXFSZ ignored
    code = textwrap.dedent("""
        import resource, signal, sys
        import spice
        folder = sys.argv[1]
        collection = spice.Collection(folder)
        collection.seed("small", "", a=1)                       # fits under the limit
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))
        try:
            collection.seed("large", "", text="x" * 2000)
        except spice.SpiceStoreError as exc:
            print("refused:", exc)
    """)
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused: cannot write large..r000001.yaml into the spice folder" in done.stdout
    assert "File too large" in done.stdout and "nothing was stored" in done.stdout
    assert leftovers(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["small..r000001.yaml"]


def test_a_disk_full_during_fsync_leaves_no_temporary_file(tmp_path, monkeypatch):
    collection = spice.Collection(str(tmp_path))
    collection.seed("t", "", a=1)

    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spice_store.os, "fsync", disk_full)
    with pytest.raises(spice.SpiceStoreError, match="No space left on device"):
        collection.update("t", "", a=2)
    assert leftovers(tmp_path) == []
    assert [r.revision for r in collection.refresh().history("t")] == [1]


@pytest.mark.parametrize("code", [errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS])
def test_without_hard_links_records_are_still_published_exclusively(tmp_path, monkeypatch, code):
    calls = []

    def no_links(source, target, *args, **kwargs):
        calls.append(target)
        raise OSError(code, os.strerror(code), source, None, target)

    monkeypatch.setattr(spice_store.os, "link", no_links)
    one = spice.Collection(str(tmp_path), listing_ttl=None)
    two = spice.Collection(str(tmp_path), listing_ttl=None)   # a second writer, its listing stale
    first = one.seed("roi", "S1", x0=1)
    assert calls and first.revision == 1
    store = one.store
    with pytest.raises(FileExistsError):   # the name is taken: never overwritten
        store.publish("roi.S1.r000001.yaml", b"format: 1\n")
    assert spice.load_record((tmp_path / "roi.S1.r000001.yaml").read_text(), "x").uuid == first.uuid
    second = two.update("roi", "S1", x0=2)   # catches up past revision 1
    assert second.revision == 2
    assert [r.data["x0"] for r in spice.Collection(str(tmp_path)).history("roi")] == [1, 2]
    assert leftovers(tmp_path) == []

    def no_room(source, target, *args, **kwargs):   # any other error of os.link is an error
        raise OSError(errno.ENOSPC, "No space left on device", source, None, target)

    monkeypatch.setattr(spice_store.os, "link", no_room)
    with pytest.raises(spice.SpiceStoreError, match="No space left on device"):
        one.seed("roi", "S2", x0=1)
    assert sorted(os.listdir(tmp_path)) == ["roi.S1.r000001.yaml", "roi.S1.r000002.yaml"]

