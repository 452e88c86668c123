"""Shared fixtures: the real compiled KB (built on demand) and a tiny hand-written KB."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from iatro.analysis import Engine
from iatro.kb.store import KnowledgeBase, load_kb
from iatro.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    kb_dir = get_settings().kb_dir
    if not (kb_dir / "manifest.json").exists():
        subprocess.run([sys.executable, "-m", "cli.main", "kb", "build"], check=True, cwd=ROOT)
    return load_kb(kb_dir)


@pytest.fixture(scope="session")
def engine(kb: KnowledgeBase) -> Engine:
    return Engine(kb)
