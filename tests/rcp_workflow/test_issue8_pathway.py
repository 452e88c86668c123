"""Issue 8: a whole Iatroprev / Optimedoc / BPM pathway, on SQLite and PostgreSQL, with the real KB."""

from __future__ import annotations

import pytest

from rcp_workflow.workflow import WorkflowService

from .pathway import case_in


@pytest.mark.parametrize("pathway", ["iatroprev", "optimedoc", "bpm"])
def test_whole_pathway_reaches_closed(service: WorkflowService, actors, engine, pathway: str) -> None:
    case = case_in(service, actors, engine, pathway, "closed")
    assert case.state == "closed"
    assert case.allowed_actions == ()
