"""The step chain: which spice types each cooking step reads, and which step comes before it
(docs/architecture.md#the-route-of-a-parameter).

The step names are the app's step folder names (:data:`eqegs_repo.io.app_names.STEPS`).
"""
from eqegs_repo.io.app_names import check_step

# The spice types each step reads directly (upstream steps add theirs).
STEP_TYPES = {
    "reconstruction": ("sensor_layout", "roi"),
    "q_integration": ("geometry", "q_integration"),
    "e_spectrum_and_isf": ("sp_param", "calibration", "velocity_calibration",
                           "angle_calibration", "q_range", "e_spectrum"),
}
UPSTREAM = {"reconstruction": None, "q_integration": "reconstruction",
            "e_spectrum_and_isf": "q_integration"}
# Fields that only name output folders or the exported dtype: they never change a result.
EXPORT_ONLY = {
    "q_integration": ("output_subdir",),
    "e_spectrum": ("output_subdir_mode", "output_subdir", "input_subdir"),
    "reconstruction": ("dtype_out",),
}


def chain(step):
    """The steps up to and including ``step``, first step first."""
    out = [check_step(step)]
    while UPSTREAM[out[0]] is not None:
        out.insert(0, UPSTREAM[out[0]])
    return out


def chain_types(step):
    """Every spice type the chain up to ``step`` reads, in step order."""
    return tuple(name for s in chain(step) for name in STEP_TYPES[s])

