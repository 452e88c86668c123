"""Settings in one object, read from the environment (``IATRO_*``) when asked for, never at import."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The compiled KB sits beside its sources in a development checkout; deployments set IATRO_KB_DIR.
_DEFAULT_KB_DIR = Path(__file__).resolve().parents[1] / "knowledge_base" / "compiled"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IATRO_", frozen=True)

    kb_dir: Path = Field(default=_DEFAULT_KB_DIR, description="Directory of the compiled knowledge base")
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_000_000
    max_lines: int = 200
    database_url: str = "sqlite:///iatro.sqlite"


def get_settings() -> Settings:
    return Settings()
