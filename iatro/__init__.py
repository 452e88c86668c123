"""Iatro: medication-safety engine for polymedicated older patients.

The core imports none of the other top-level packages (``knowledge_base``, ``ocr``, ``api``,
``rcp_workflow``, ``cli``); they import it.
"""

from iatro.errors import (
    FieldError,
    IatroError,
    InputError,
    KnowledgeBaseCorrupt,
    KnowledgeBaseError,
    KnowledgeBaseMissing,
)
from iatro.settings import Settings, get_settings

__all__ = [
    "FieldError",
    "IatroError",
    "InputError",
    "KnowledgeBaseCorrupt",
    "KnowledgeBaseError",
    "KnowledgeBaseMissing",
    "Settings",
    "get_settings",
]
