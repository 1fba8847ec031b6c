"""Chunks of an HDF5 dataset decompressed outside HDF5, so that the lanes of a pass decompress
at the same time (docs/layout.md#hdf5-speed).

h5py runs one HDF5 call at a time, and HDF5 decompresses inside the call: through HDF5, one
core decompresses, whatever the number of lanes. For a dataset whose chunks hold whole frames
and whose filters this module can undo, :class:`ChunkReader` reads each chunk's stored bytes
with ``read_direct_chunk`` (HDF5's lock held only while the bytes are read) and undoes the
filters in the calling thread, which releases the GIL while it decompresses:

* Zstandard (HDF5 filter 32015), with the ``zstandard`` package (extra ``hdf5``);
* deflate (gzip, filter 1), with the standard library's ``zlib``;
* shuffle (filter 2), with numpy;
* no filter at all (chunked, uncompressed).

Any other pipeline (LZ4, bitshuffle, Blosc, ...), a chunk layout across frames' rows or several
sensors, or a missing ``zstandard`` leaves the dataset to HDF5 (:func:`chunk_reader` returns
None). A chunk that does not decode to its expected size is read through HDF5, which reads it
or names what is wrong with it. The values are those HDF5 gives, to the bit.
"""
import zlib

import numpy as np

ZSTD, DEFLATE, SHUFFLE = 32015, 1, 2
"""The HDF5 filter ids this module undoes."""


def chunk_reader(dset, frame_axis):
    """A :class:`ChunkReader` of the h5py dataset ``dset`` whose frames lie along ``frame_axis``
    (0 for ``(frames, rows, cols)``, 1 for the stacked ``(sensors, frames, rows, cols)``), or
    None when HDF5 must read it: not chunked, chunks that split a frame or span several
    sensors, a filter other than those above, or Zstandard without the ``zstandard`` package."""
    chunks = dset.chunks
    if not chunks or tuple(chunks[frame_axis + 1:]) != tuple(dset.shape[frame_axis + 1:]) \
            or any(n != 1 for n in chunks[:frame_axis]):
        return None
    plist = dset.id.get_create_plist()
    filters = [plist.get_filter(index)[0] for index in range(plist.get_nfilters())]
    if any(code not in (ZSTD, DEFLATE, SHUFFLE) for code in filters):
        return None
    zstd = None
    if ZSTD in filters:
        try:
            import zstandard as zstd
        except ImportError:
            return None
    return ChunkReader(int(chunks[frame_axis]), tuple(int(n) for n in chunks[frame_axis + 1:]), filters, dset.dtype,
                       zstd=zstd)


class ChunkReader:
    """Reads whole frames of one chunked dataset chunk by chunk: ``chunk_frames`` frames of
    ``frame_shape`` (rows, cols) per chunk, ``filters`` the ids of its pipeline in the order HDF5
    applied them when writing, ``dtype`` its values' type; ``zstd`` the ``zstandard`` module when
    the pipeline holds Zstd."""

    def __init__(self, chunk_frames, frame_shape, filters, dtype, *, zstd=None):
        self.chunk_frames, self.frame_shape, self.filters = int(chunk_frames), tuple(frame_shape), list(filters)
        self.zstd = zstd
        self.dtype = np.dtype(dtype)
        self.nbytes = self.chunk_frames * int(np.prod(self.frame_shape, dtype=np.int64)) * self.dtype.itemsize

    def read(self, dset, start, stop, out, *, sensor=None):
        """Frames ``start..stop-1`` of ``dset`` (of ``sensor`` of the stacked dataset) into
        ``out`` ((stop - start, rows, cols), C-ordered): each chunk's stored bytes read by HDF5
        (under h5py's lock), then decoded in this thread. A chunk that cannot be decoded here
        is read by HDF5 (``dset.read_direct``)."""
        n = self.chunk_frames
        for first in range(start - start % n, stop, n):
            lo, hi = max(start, first), min(stop, first + n)
            offset = (first, 0, 0) if sensor is None else (sensor, first, 0, 0)
            mask, stored = dset.id.read_direct_chunk(offset)
            chunk = self.decode(mask, stored)
            if chunk is None:
                frames = slice(lo, hi)
                dset.read_direct(out[lo - start:hi - start],
                                 source_sel=frames if sensor is None else (sensor, frames))
            else:
                out[lo - start:hi - start] = chunk[lo - first:hi - first]

    def decode(self, mask, stored):
        """The chunk ``(chunk_frames, rows, cols)`` from its ``stored`` bytes, undoing the
        filters whose bit of ``mask`` is not set (HDF5 sets a filter's bit when it skipped that
        filter for this chunk); None when they do not decode to one chunk's bytes."""
        data = stored
        try:
            for index in reversed(range(len(self.filters))):
                if mask & (1 << index):
                    continue
                code = self.filters[index]
                if code == ZSTD:
                    data = self.zstd.ZstdDecompressor().decompress(data, max_output_size=self.nbytes)
                elif code == DEFLATE:
                    data = zlib.decompress(data, bufsize=self.nbytes)
                elif len(data) != self.nbytes:  # SHUFFLE of anything but one chunk's bytes
                    return None
                else:  # SHUFFLE: the first bytes of every value, then the second bytes, ...
                    data = np.frombuffer(data, np.uint8).reshape(self.dtype.itemsize, -1).T.tobytes()
        except Exception:  # noqa: BLE001 - damaged or unexpected: HDF5 reads it, or says why not
            return None
        if len(data) != self.nbytes:
            return None
        return np.frombuffer(data, self.dtype).reshape((self.chunk_frames,) + self.frame_shape)

