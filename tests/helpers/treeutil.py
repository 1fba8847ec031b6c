"""Tiny hand-made E-QEGS trees for tests (independent of the synthetic generator)."""
import io
import json

import fsspec
import numpy as np

MARKER = {"n_frames": 6, "n_sensors": 3, "sensor_shape": [4, 2], "trains_integrated": 10,
          "exposure_s": 1.5}


def npy_bytes(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def sample_arrays(seed, n_frames=6, n_sensors=3, shape=(4, 2), dtype=np.uint32):
    rng = np.random.default_rng(seed)
    sensors = [rng.integers(0, 1000, (n_frames,) + tuple(shape)).astype(dtype) for _ in range(n_sensors)]
    velocity = np.linspace(-10, 10, n_frames)
    return sensors, velocity


def write_sample(fs, path, seed=0, marker=None, sensors=None, velocity=None):
    """Write a sample folder at ``path`` on ``fs`` (marker + sensors + velocity)."""
    marker = dict(MARKER if marker is None else marker)
    if sensors is None:
        sensors, default_velocity = sample_arrays(
            seed, marker["n_frames"], marker["n_sensors"], marker["sensor_shape"])
        velocity = default_velocity if velocity is None else velocity
    fs.makedirs(f"{path}/train_integrated", exist_ok=True)
    fs.pipe(f"{path}/train_integrated.json", json.dumps(marker).encode())
    for k, array in enumerate(sensors):
        fs.pipe(f"{path}/train_integrated/sensor_{k}.npy", npy_bytes(array))
    fs.pipe(f"{path}/train_integrated/velocity.npy", npy_bytes(np.asarray(velocity)))
    return sensors, velocity


def write_tree(fs, root, proposals):
    """``proposals``: dict proposal -> list of sample keys. Returns {(p, s): sensors}."""
    out = {}
    for i, (proposal, samples) in enumerate(proposals.items()):
        for j, sample in enumerate(samples):
            out[proposal, sample] = write_sample(fs, f"{root}/{proposal}/{sample}", seed=100 * i + j)[0]
    return out


def local_fs():
    return fsspec.filesystem("file")


from fsspec.implementations.memory import MemoryFileSystem  # noqa: E402


class SpyMemoryFS(MemoryFileSystem):
    """Memory filesystem (same store) under the protocol ``spymem://`` that records opened
    paths and refuses to list or stat the paths in ``unreadable``."""

    protocol = "spymem"
    opened = []
    unreadable = set()

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(str(path).removeprefix("spymem://"))

    def _refuse(self, path):
        path = self._strip_protocol(path)
        if any(path == u or path.startswith(u + "/") for u in self.unreadable):
            raise PermissionError(13, "Permission denied", path)

    def ls(self, path, detail=True, **kwargs):
        self._refuse(path)
        return super().ls(path, detail=detail, **kwargs)

    def info(self, path, **kwargs):
        self._refuse(path)
        return super().info(path, **kwargs)

    def _open(self, path, mode="rb", **kwargs):
        self._refuse(path)
        SpyMemoryFS.opened.append(self._strip_protocol(path))
        return super()._open(path, mode, **kwargs)


fsspec.register_implementation("spymem", SpyMemoryFS, clobber=True)
