"""How watch learns of changed files (issue 22): file events on a local filesystem end a wait
early; network filesystems, URLs and a missing watchfiles mean polling, and say why."""
import threading
import time

import pytest

from eqegs_repo import file_events
from eqegs_repo.errors import BadInput
from eqegs_repo.file_events import change_waiter, filesystem_type, how_changes_are_found, why_no_events

MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
beamline:/export /UserData nfs4 rw 0 0
mds@o2ib:/lustre /lustre lustre rw 0 0
sshfs#me@host: /mnt/remote fuse.sshfs rw 0 0
tmpfs /UserData/local tmpfs rw 0 0
"""


@pytest.fixture
def mounts(tmp_path):
    path = tmp_path / "mounts"
    path.write_text(MOUNTS)
    return str(path)


def test_the_filesystem_of_a_path_is_its_longest_mount_point(mounts):
    assert filesystem_type("/UserData/u1/EQEGS", mounts) == "nfs4"
    assert filesystem_type("/UserData/local/x", mounts) == "tmpfs"  # the longer mount point wins
    assert filesystem_type("/UserDataX", mounts) == "ext4"  # a prefix of a name is no mount point
    assert filesystem_type("/tmp", "/no/such/table") is None


@pytest.mark.parametrize("root, reason", [
    ("/UserData/u1/EQEGS", "nfs4 is a network filesystem"),
    ("/lustre/EQEGS", "lustre is a network filesystem"),
    ("/mnt/remote/EQEGS", "fuse.sshfs is a network filesystem"),
])
def test_network_filesystems_are_polled_and_say_why(mounts, root, reason):
    assert reason in why_no_events(root, local=True, mounts=mounts)
    assert why_no_events(root, local=False, mounts=mounts) == "not a local folder"


def test_auto_events_poll_and_a_bad_mode(tmp_path, monkeypatch):
    assert how_changes_are_found(str(tmp_path), local=True) == "file events"
    assert how_changes_are_found(str(tmp_path), local=True, mode="poll") == "polling (asked for)"
    assert how_changes_are_found("memory://x", local=False) == "polling (not a local folder)"
    with pytest.raises(BadInput, match="changes='events': no file events for memory://x: not a local folder"):
        how_changes_are_found("memory://x", local=False, mode="events")
    with pytest.raises(BadInput, match="changes must be one of auto, events, poll; got 'inotify'"):
        how_changes_are_found(str(tmp_path), local=True, mode="inotify")
    monkeypatch.setattr(file_events, "optional_import", lambda *a, **k: None)  # watchfiles not installed
    assert how_changes_are_found(str(tmp_path), local=True) == (
        'polling (watchfiles is not installed: pip install "eqegs_repo[live]")')


def test_a_file_event_ends_the_wait_and_polling_waits_the_interval(tmp_path):
    how, wait = change_waiter(str(tmp_path), 30.0, local=True)
    assert how == "file events"
    writer = threading.Timer(0.3, lambda: (tmp_path / "train_integrated.json").write_text("{}"))
    start = time.monotonic()
    writer.start()
    wait(30.0)
    assert time.monotonic() - start < 20  # ended by the write, not by the 30 s interval
    how, wait = change_waiter(str(tmp_path), 0.2, local=True, mode="poll")
    start = time.monotonic()
    (tmp_path / "x").write_text("1")
    wait(0.2)
    assert how == "polling (asked for)" and time.monotonic() - start >= 0.2


def test_a_watch_on_file_events_cooks_the_samples_present(tmp_path):
    from tests.helpers.cooktrees import PROPOSAL, image_params, repository, seed_spice, write_runs

    from eqegs_repo import watch

    params = image_params(n_frames=64)
    write_runs(tmp_path, params, [4])
    repo = repository(tmp_path)
    seed_spice(repo[PROPOSAL], params, background=False, n_mc=20, isf_error_threshold=10.0)
    rows = watch.watch(repo, existing=True, interval=0.2, max_polls=3, changes="events",
                       steps=("q_integration",))
    assert sorted((r["sample"], r["status"]) for r in rows) == [("S000_noise", "ok"), ("S001", "ok")]
