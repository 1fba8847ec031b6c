"""E-QEGS data of SPring-8 BL35XU as proposals and samples with lazy raw data,
versioned spice parameters and cooking steps.

Start with :class:`eqegs_repo.Repository`.
"""
__version__ = "0.1.0"
