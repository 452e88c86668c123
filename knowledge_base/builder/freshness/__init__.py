"""Keeping the knowledge base fresh (issue 9): new ANSM editions and new BDPM downloads.

* :mod:`.ansm_import` — ``iatro kb import-ansm``: a thesaurus edition read from the ANSM PDFs,
  written as edition JSON, with the curated qualifications it makes stale.
* :mod:`.editions` — an edition named on the command line: compiled into the KB, or a JSON file.
* :mod:`.diff` — ``iatro kb diff``: rules added, removed, renamed, with new levels or texts.
* :mod:`.impact` — ``iatro kb diff --impact``: the interaction alerts of real prescriptions under
  both editions, through the engine's own index.
* :mod:`.bdpm_refresh` — ``iatro kb refresh-bdpm``: the KB rebuilt from a newer BDPM download,
  with products added, withdrawn, changed, and ANSM links lost.

Decisions and figures: ``FRESHNESS.md`` beside this file.
"""
