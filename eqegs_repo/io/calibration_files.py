"""Fingerprints of the app's calibration folders: the SHA-256 of each file, so a later run can
tell that a calibration file changed (docs/spice.md, the ``calibration`` type).
"""
import hashlib

import fsspec


def hash_calibration_folder(folder, fs=None):
    """``{file name: sha256 hex}`` of the files directly in a calibration folder.

    ``folder`` is a path or fsspec URL (``fs``: the filesystem it is on). Raises
    FileNotFoundError naming the folder when it does not exist.
    """
    if fs is None:
        fs, folder = fsspec.core.url_to_fs(str(folder))
    if not fs.isdir(folder):
        raise FileNotFoundError(f"calibration folder {folder} does not exist or is not a folder")
    hashes = {}
    for entry in sorted(fs.ls(folder, detail=True), key=lambda e: e["name"]):
        if entry.get("type") != "file":
            continue
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        hashes[name] = hashlib.sha256(fs.cat_file(entry["name"])).hexdigest()
    return hashes
