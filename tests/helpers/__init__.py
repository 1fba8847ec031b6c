"""Helpers shared by the tests: ``treeutil`` (small raw trees on any fsspec filesystem) and
``cooktrees`` (synthetic runs with spice, ready to cook). ``ROOT`` is the repository root."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
