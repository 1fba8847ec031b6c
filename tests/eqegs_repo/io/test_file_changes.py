"""Raw files rewritten, truncated or replaced while a sample is open (issue 20, H7): one
BadSample naming the file and what changed, never a signal that kills the process."""
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from eqegs_repo import BadSample
from eqegs_repo.io.file_identity import FileIdentity, check_unchanged, unchanged
from tests.helpers.treeutil import local_fs, write_sample

ROOT = Path(__file__).resolve().parents[3]
MARKER = {"n_frames": 64, "n_sensors": 2, "sensor_shape": [32, 32]}  # 4 KiB frames: 64 pages a file


def run_isolated(code, *args):
    """Run ``code`` in a subprocess (hard limits: 60 s, 3 GB); the JSON it prints last. A
    process killed by a signal (SIGBUS from a memory map of a truncated file) fails the test
    naming the signal."""
    prelude = "import json, resource, sys\nresource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
    done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code), *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=60)
    if done.returncode < 0:
        pytest.fail(f"the process was killed by {signal.Signals(-done.returncode).name}: {done.stderr[-1000:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


_TRUNCATE_UNDER_OPEN_READERS = """
    import os

    import numpy as np
    import xarray as xr

    from eqegs_repo import BadSample, Repository
    from eqegs_repo.io.formats.npy import NpyFile
    from tests.helpers.treeutil import local_fs, write_sample

    root = sys.argv[1]
    marker = json.loads(sys.argv[2])
    sensors, _ = write_sample(local_fs(), root + "/P1/S1", marker=marker)
    others, _ = write_sample(local_fs(), root + "/P1/S2", marker=marker, seed=1)
    path = root + "/P1/S1/train_integrated/sensor_1.npy"
    size = os.path.getsize(path)
    prop = Repository(root + "/{proposal}/{sample}")["P1"]
    raw = prop["S1"].raw
    engine = xr.open_dataset(root + "/P1/S1", engine="eqegs")
    stream = NpyFile(local_fs(), path)
    before = [bool((raw.counts[1, 40:50].values == sensors[1][40:50]).all()),
              bool((engine.counts[1, 40:50].values == sensors[1][40:50]).all()),
              bool((stream.read_frames(40, 50) == sensors[1][40:50]).all())]
    np.save(path, sensors[1][:3])  # rewritten in place by a smaller array
    new_size = os.path.getsize(path)

    def attempt(read):
        try:
            read()
        except BadSample as exc:
            return str(exc)
        return "no error"

    print(json.dumps({
        "before": before, "size": size, "new_size": new_size,
        "raw": attempt(lambda: raw.counts[1, 40:50].values),
        "raw_again": attempt(lambda: raw.counts[1, 0].values),
        "engine": attempt(lambda: engine.counts[:, 60].values),
        "stream": attempt(lambda: stream.read_frames(40, 50)),
        "other_sample": bool((prop["S2"].raw.counts[1].values == others[1]).all()),
        "reopened": attempt(lambda: Repository(root + "/{proposal}/{sample}")["P1"]["S1"].raw),
    }))
"""


def test_a_file_truncated_under_an_open_sample_is_an_error_naming_it_not_a_signal(tmp_path):
    out = run_isolated(_TRUNCATE_UNDER_OPEN_READERS, str(tmp_path), json.dumps(MARKER))
    assert out["before"] == [True, True, True]
    changed = (f"sensor_1.npy: changed while it was open (truncated: expected {out['size']} bytes, "
               f"found {out['new_size']} bytes")
    for reader in ("raw", "raw_again", "engine", "stream"):
        assert changed in out[reader], (reader, out[reader])
        assert "open the sample again" in out[reader]
    assert out["other_sample"] is True  # the rest carries on
    assert "the sensors' frame counts differ (sensor_0.npy: 64, sensor_1.npy: 3)" in out["reopened"]


def _sample(tmp_path):
    sensors, _ = write_sample(local_fs(), f"{tmp_path}/S1", marker=MARKER)
    from eqegs_repo.io.formats.npy import NpyFile

    path = f"{tmp_path}/S1/train_integrated/sensor_0.npy"
    return sensors[0], path, NpyFile(local_fs(), path)


def test_a_file_rewritten_with_the_same_size_is_seen_by_its_modification_time(tmp_path):
    counts, path, source = _sample(tmp_path)
    np.testing.assert_array_equal(source.read(5), counts[5])
    np.save(path, counts + 1)  # the same size, other counts
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, source.identity.mtime_ns + 10_000_000))  # beyond the clock tick
    for read in (lambda: source.read(5), lambda: source.read_frames(0, 2)):
        with pytest.raises(BadSample, match=r"sensor_0.npy: changed while it was open \(modified \(mtime \d+ ns, now \d+ ns\)\)"):
            read()


def test_a_file_replaced_before_its_first_read_is_refused_naming_the_other_inode(tmp_path):
    counts, path, source = _sample(tmp_path)
    np.save(path + ".new.npy", counts[::-1].copy())
    os.replace(path + ".new.npy", path)  # a copy tool renames a new file over the name
    with pytest.raises(BadSample, match=r"sensor_0.npy: changed while it was open \(replaced by another file"):
        source.read_frames(0, 64)


def test_a_read_cut_short_by_a_change_names_the_change(tmp_path):
    counts, path, source = _sample(tmp_path)
    fd = os.open(path, os.O_RDONLY)
    try:
        identity = FileIdentity.of(fd)
        check_unchanged(fd, path, identity)
        with pytest.raises(BadSample, match=rf"truncated: expected {identity.size} bytes, found 100 bytes"):
            with unchanged(fd, path, identity):
                os.truncate(path, 100)
                raise BadSample(f"{path}: ended at byte 100")  # what a positioned read then says
    finally:
        os.close(fd)
