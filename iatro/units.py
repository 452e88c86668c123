"""Shared vocabularies: the unit a dose is counted in, and routes of administration.

One table each, used by the resolver (BDPM forms and routes) and by the checks (prescribers'
routes and the unit a strength refers to), so that both always agree on what "comprimé" or
"IV" means.
"""

from __future__ import annotations

from iatro.text import fold

# Folded word found in a BDPM form or reference ("un comprimé", "poudre … en sachet-dose") -> the
# unit the posology parser counts.
_DOSING_UNITS = (
    ("comprime", "comprimé"),
    ("gelule", "gélule"),
    ("sachet", "sachet"),
    ("capsule", "capsule"),
    ("suppositoire", "suppositoire"),
    ("ampoule", "ampoule"),
    ("lyophilisat", "lyophilisat"),
)

# Folded route (BDPM "voies" or as prescribers write it) -> the route the checks compare.
_ROUTES = {
    "orale": "orale", "oral": "orale", "per os": "orale", "po": "orale", "os": "orale",
    # "buccale" is BDPM's local mouth route (gels, mouthwashes), not a systemic oral intake.
    "sublinguale": "orale", "buccale": "buccale",
    "intraveineuse": "injectable", "iv": "injectable", "ivd": "injectable", "ivl": "injectable",
    "intramusculaire": "injectable", "im": "injectable", "sous cutanee": "injectable", "sc": "injectable",
    "injectable": "injectable",
    "cutanee": "cutanee", "transdermique": "transdermique", "ophtalmique": "ophtalmique",
    "collyre": "ophtalmique", "nasale": "nasale", "inhalee": "inhalee", "rectale": "rectale",
    "vaginale": "vaginale", "auriculaire": "auriculaire",
}  # fmt: skip


def dosing_unit(text: str) -> str | None:
    """The countable unit a form or strength reference names ("un comprimé" -> "comprimé"), if any."""
    folded = fold(text)
    return next((unit for word, unit in _DOSING_UNITS if word in folded), None)


def normalise_route(route: str | None) -> str | None:
    """ "IV" -> "injectable", "per os" -> "orale"; an unknown route is kept, folded."""
    if not route:
        return None
    key = fold(route).replace("-", " ")
    return _ROUTES.get(key, key)


def known_route(route: str) -> str | None:
    """The normalised route, or None when the table does not know it."""
    return _ROUTES.get(fold(route).replace("-", " "))
