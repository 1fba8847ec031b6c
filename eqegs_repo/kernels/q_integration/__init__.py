"""The q-integration kernels (docs/physics.md#q-integration): beam centre, forward spectrum and
background scaling (:mod:`.beam`), pixel coordinates, masks and geometry (:mod:`.pixels`), radial
bins and the sparse integrator (:mod:`.integrator`) and its summing engines (:mod:`.engines`).

Pure functions, numpy in, numpy out, no I/O. Images are (H, W) = (rows, cols); x is the column
index (right), y the row index (down); a centre is (x_c, y_c) in px, measured from the centre of
pixel (0, 0). Blocks of frames have the frames axis first: (frames, H, W) or (frames, H·W).
The public names of the four modules are importable from this package
(``from eqegs_repo.kernels import q_integration as qi; qi.RadialIntegrator``).
"""
from eqegs_repo.kernels.q_integration.beam import (  # noqa: F401
    BG_SCALE_MODES,
    CENTRE_METHODS,
    BeamCentre,
    background_scale,
    box_bounds,
    find_beam_centre,
    forward_spectrum,
    forward_spectrum_sensors,
    sensor_boxes,
    subtract_background,
)
from eqegs_repo.kernels.q_integration.engines import (  # noqa: F401
    ENGINES,
    PixelBinSums,
    labelled_sum_kernel,
)
from eqegs_repo.kernels.q_integration.integrator import (  # noqa: F401
    PIXEL_SPLITTING,
    RadialBins,
    RadialIntegrator,
)
from eqegs_repo.kernels.q_integration.pixels import (  # noqa: F401
    DEAD_PIXEL_MIN_LEVEL,
    DetectorGeometry,
    azimuth_deg,
    centre_sensitive,
    coverage_keep,
    dead_pixel_keep,
    direct_beam_keep,
    hot_pixel_keep,
    hot_pixel_score,
    image_2d,
    pixel_normalisation,
    pixel_offsets,
    pixel_radius,
    ring_excess,
    ring_level,
    sector_keep,
)
