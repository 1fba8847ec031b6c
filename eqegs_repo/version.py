"""The library's version, in the base layer so that any module can stamp it on what it writes
(cache fingerprints, dataset attrs) without importing the package face; ``eqegs_repo.__version__``
is this value, and ``pyproject.toml`` states the same one."""
__version__ = "0.1.0"
