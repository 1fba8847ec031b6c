"""E-QEGS data of SPring-8 BL35XU as proposals and samples with lazy raw data,
versioned spice parameters and cooking steps.

Start with :class:`eqegs_repo.Repository`::

    from eqegs_repo import Repository
    repo = Repository("/UserData/{account}/EQEGS/{proposal}/{sample}", account="u0000000")
"""
from eqegs_repo.errors import (
           BadInput,
           BadSample,
           EqegsError,
           HandleNotFound,
           KeyNotFound,
)
from eqegs_repo.repository import Proposal, Repository, Sample

__version__ = "0.1.0"
__all__ = ["Repository", "Proposal", "Sample", "EqegsError", "BadInput", "BadSample",
           "KeyNotFound", "HandleNotFound", "__version__"]
