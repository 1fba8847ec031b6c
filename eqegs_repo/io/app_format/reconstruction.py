"""The reconstruction folder of the app: ``reconstruction.npy`` (frames, H, W), the frame-summed
image ``reconstruction.csv``, the ROI detection and a copy of the marker (docs/outputs.md).

:func:`open_stack` opens ``reconstruction.npy`` as the input of a cook when a sample is cooked
from the app's work instead of its raw data (docs/reanalysis.md#from-the-apps-work)."""
import numpy as np
import xarray as xr
from xarray.core import indexing

from eqegs_repo.errors import BadSample
from eqegs_repo.io.app_format import names
from eqegs_repo.io.app_format.text import image_text, json_text, read_image, read_json
from eqegs_repo.io.formats.npy import NpyFile
from eqegs_repo.io.raw import LazyArray


def write(stage, ds, inputs):
    """Write the reconstruction ``ds`` into ``stage``. ``inputs``: ``n_frames``, ``frame_blocks``
    (the reconstructed frames, float32 (n, H, W) blocks in order), ``dtype_out`` (dtype of the
    stack on disk; whole counts unless float32) and ``marker`` (bytes of the sample's marker)."""
    with stage.open(names.RECONSTRUCTION_NPY) as f:
        _write_stack(f, inputs["n_frames"], inputs["frame_blocks"], inputs["dtype_out"], ds["image"].shape)
    stage.write(names.RECONSTRUCTION_CSV, image_text(ds["image"].values))
    if ds.attrs.get("roi_detection"):
        stage.write(names.ROI_DETECTION_JSON, json_text(ds.attrs["roi_detection"]))
    stage.write(names.MARKER_COPY, inputs["marker"])


def _write_stack(stream, n_frames, blocks, dtype, image_shape):
    """Stream (n, H, W) float32 ``blocks`` into an open .npy file of ``n_frames`` frames."""
    dtype = np.dtype(dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": (n_frames,) + tuple(image_shape)}
    np.lib.format.write_array_header_1_0(stream, header)
    for canvas in blocks:
        values = canvas if dtype == np.float32 else np.rint(canvas).astype(dtype)
        stream.write(np.ascontiguousarray(values).tobytes())


STACK_IN_SAMPLE = f"reconstruction/{names.RECONSTRUCTION_NPY}"
"""The app's reconstructed stack, relative to a sample folder (the folder is the step's name)."""


def stack_path(sample_path):
    """Path of the app's reconstructed stack of the sample folder ``sample_path``."""
    return f"{sample_path}/{STACK_IN_SAMPLE}"


def open_stack(fs, path, n_frames, canvas_shape):
    """The app's ``reconstruction.npy`` at ``path`` as a lazy
    :class:`~eqegs_repo.io.formats.npy.NpyFile` (header read, nothing else): a regular file
    holding a C-ordered ``(n_frames, H, W)`` stack of real numbers, ``(H, W) = canvas_shape``
    (the canvas of the sample's sensor layout), whole. Anything else is one BadSample naming the
    file, what was expected and what was found (a truncated file, trailing bytes, another shape
    or dtype)."""
    stack = NpyFile(fs, path)
    expected = (int(n_frames), *map(int, canvas_shape))
    if stack.dtype.kind not in "uif":
        raise BadSample(f"{path}: expected a stack of real numbers (float32 or whole counts), found dtype "
                        f"{stack.dtype}")
    if tuple(stack.shape) != expected:
        raise BadSample(f"{path}: expected a (frames, rows, cols) stack of shape {expected} (n_frames of the "
                        f"marker, the canvas of the sensor layout), found shape {tuple(stack.shape)}")
    return stack


def read(fs, folder, attrs):
    """The reconstruction in ``folder`` as a Dataset (``attrs``: those of its info.json)."""
    data = {}
    image = read_image(fs, folder, names.RECONSTRUCTION_CSV)
    if image is not None:
        data["image"] = image
    npy = f"{folder}/{names.RECONSTRUCTION_NPY}"
    if fs.exists(npy):
        stack = NpyFile(fs, npy)
        if len(stack.shape) != 3:
            raise BadSample(f"{npy}: expected a (frames, rows, cols) stack, found shape {stack.shape}")
        data["images"] = xr.Variable(("frame", "y", "x"), indexing.LazilyIndexedArray(LazyArray(stack)),
                                    {"units": "counts", "long_name": "reconstructed image of each frame"})
    if not data:
        raise BadSample(f"{folder}: neither {names.RECONSTRUCTION_CSV} nor {names.RECONSTRUCTION_NPY} found")
    detection = f"{folder}/{names.ROI_DETECTION_JSON}"
    if "roi" not in attrs and fs.exists(detection):
        found = read_json(fs, detection)
        if all(k in found for k in ("x0", "y0", "x1", "y1")):
            attrs["roi"] = [found[k] for k in ("x0", "y0", "x1", "y1")]
        attrs["roi_detection"] = found
    marker = f"{folder}/{names.MARKER_COPY}"
    if fs.exists(marker):
        attrs["train_integrated"] = read_json(fs, marker)
    return xr.Dataset(data, attrs=attrs)
