"""Reading the knowledge base's curated YAML tables.

libyaml's parser (PyYAML's C extension, shipped in its wheels) reads them about ten times faster than
the pure-Python one, a good part of the engine's start-up. Both build the same values: the C loader
only replaces the scanner and parser, the safe constructor and tag resolution are PyYAML's own.
"""

from __future__ import annotations

from typing import Any

import yaml

_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(text: str) -> Any:
    """The YAML ``text`` as Python values, as ``yaml.safe_load`` reads it."""
    return yaml.load(text, Loader=_LOADER)  # a safe loader, C or Python
