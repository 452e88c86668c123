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
    # OCR of an uploaded ordonnance (POST /v1/prescriptions/ocr): a phone photograph or a scanned PDF
    # is megabytes, so that route alone accepts up to ocr_max_bytes; a page whose reading takes
    # longer than ocr_page_timeout_s is stopped and reported, never left to run.
    ocr_max_bytes: int = Field(default=20_000_000, description="Largest upload the OCR route accepts")
    ocr_page_timeout_s: float = Field(default=30.0, gt=0, description="Time limit for reading one page")
    ocr_workers: int = Field(default=2, ge=1, description="Pages of one upload read side by side")
    # The RCP workflow's database. The default is a SQLite file in the working directory (scripts/run
    # runs from the checkout's root); PostgreSQL: postgresql+psycopg://user:pass@host/db.
    database_url: str = Field(
        default="sqlite:///iatro.sqlite", description="Workflow database (SQLAlchemy URL)"
    )
    # Demo organisations and users with published passwords: for a local walk-through only. `iatro
    # serve` turns it on when it listens on a loopback address (see `iatro serve --demo/--no-demo`).
    demo_seed: bool = Field(default=False, description="Create the demo organisations and users at startup")
    # Garbage collection in the server (api/gc_policy.py, issue 6): the survivors of each full
    # collection (the engine's caches) are frozen out of the next ones, which otherwise walk them all
    # (200-460 ms pauses under load); they are handed back to one full collection every
    # gc_thaw_interval_s, or once (gc_thaw_growth - 1) times the startup's objects have been frozen
    # since, so that cyclic garbage frozen while alive is reclaimed.
    gc_freeze_after_full: bool = Field(default=True, description="Freeze the survivors of full collections")
    gc_thaw_interval_s: float = Field(default=600.0, gt=0, description="Longest time between two thaws")
    gc_thaw_growth: float = Field(default=2.0, gt=1, description="Frozen-set growth that forces a thaw")


def get_settings() -> Settings:
    return Settings()
