"""Vectorised batch kernels over many prescriptions at once (numpy arrays in, numpy arrays out).

The single-prescription engine (:mod:`iatro.analysis`) stays the reference; each kernel here gives
the same findings on the same input, and an agreement test says so.
"""

from iatro.batch.interactions import BatchInteractions, PairHits

__all__ = ["BatchInteractions", "PairHits"]
