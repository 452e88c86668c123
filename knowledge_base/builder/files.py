"""Reading the shipped source files: xz-compressed or plain, UTF-8 or cp1252, CRLF or LF."""

from __future__ import annotations

import hashlib
import lzma
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from iatro.errors import SourceError

SOURCES_DIR = Path(__file__).resolve().parents[1] / "sources"
REGISTRY = Path(__file__).resolve().parents[1] / "sources.yaml"
CURATED_DIR = Path(__file__).resolve().parents[1] / "curated"


@dataclass(frozen=True)
class SourceInfo:
    source_id: str
    title: str
    edition: str
    licence: str
    files: dict[str, str]


def load_registry(path: Path = REGISTRY) -> dict[str, SourceInfo]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {
        key: SourceInfo(key, entry["title"], str(entry["edition"]), entry["licence"], dict(entry["files"]))
        for key, entry in raw.items()
    }


def read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise SourceError(f"source file missing: {path}")
    data = path.read_bytes()
    return lzma.decompress(data) if path.suffix == ".xz" else data


def decode(data: bytes) -> str:
    # BDPM mixes encodings between files and copies; UTF-8 is tried first because a cp1252 decode
    # never fails and would silently garble UTF-8 accents.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def read_text(path: Path) -> str:
    return decode(read_bytes(path)).replace("\r\n", "\n").replace("\r", "\n")


def read_tsv(path: Path) -> Iterator[list[str]]:
    for line in read_text(path).split("\n"):
        if line.strip():
            yield [cell.strip() for cell in line.split("\t")]


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
