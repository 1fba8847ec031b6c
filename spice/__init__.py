"""Versioned, append-only parameter records ("spice"); knows nothing of E-QEGS."""
