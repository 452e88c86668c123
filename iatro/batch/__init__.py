"""Vectorised batch kernels over many prescriptions at once (numpy arrays in, numpy arrays out).

The single-prescription engine (:mod:`iatro.analysis`) stays the reference; each kernel here gives
the same findings on the same input, and an agreement test says so.

``interactions`` is the ANSM interaction kernel (``run``, ``check_lines``) over the lines
``encoding`` gives ids to and the pair table ``table`` builds; ``pairs`` pairs the exposures of many
prescriptions with numpy; ``qualified`` memoises the pairs whose level depends on the patient, on
the answers (``answers``) to what their qualification asks; ``patients`` is how the kernel reads a
batch's patients (as columns when the caller has them); ``factorize`` finds distinct values without
a sort when it can; ``hits`` holds the result types.
"""

from iatro.batch.interactions import BatchInteractions, PairHits
from iatro.batch.patients import BuiltPatients, PatientColumns

__all__ = ["BatchInteractions", "BuiltPatients", "PairHits", "PatientColumns"]
