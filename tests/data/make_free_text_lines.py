"""Generate ``free_text_lines.jsonl``: free-text prescription lines with their BDPM ground truth.

Each line is built from one marketed BDPM product the way a French prescriber writes it
(name + strength + form + posology), then degraded by 1-3 recorded perturbations.
Deterministic: same BDPM files + same seed -> same output.

    .venv/bin/python tests/data/make_free_text_lines.py
"""

from __future__ import annotations

import json
import lzma
import random
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BDPM = ROOT / "knowledge_base" / "sources" / "bdpm"
CIS_FILE = BDPM / "2026-07-24_obouton" / "CIS_bdpm.txt.xz"
COMPO_FILE = BDPM / "2026-04-07_stockfoule" / "CIS_COMPO_bdpm.txt.xz"
OUT_FILE = Path(__file__).with_name("free_text_lines.jsonl")

SEED = 20261124
N_LINES = 480
GERIATRIC_SHARE = 0.8  # share of lines drawn from products containing a GERIATRIC_SUBSTANCES entry
ORAL_WEIGHT = 5  # an oral product is this many times likelier to be drawn than a non-oral one
LAB_DROP_RATE = 0.5  # share of DCI + laboratory products whose laboratory is dropped

# Substances older patients commonly take, spelled as the active moiety in BDPM COMPO.
# Matched accent-insensitively as whole words inside COMPO substance names ("BÉSILATE D'AMLODIPINE").
GERIATRIC_SUBSTANCES: tuple[str, ...] = (
    # cardiovascular
    "AMLODIPINE", "LERCANIDIPINE", "NIFÉDIPINE", "DILTIAZEM", "VÉRAPAMIL", "BISOPROLOL", "NÉBIVOLOL",
    "MÉTOPROLOL", "ATÉNOLOL", "PROPRANOLOL", "CARVÉDILOL", "CÉLIPROLOL", "RAMIPRIL", "PÉRINDOPRIL",
    "ÉNALAPRIL", "LISINOPRIL", "LOSARTAN", "VALSARTAN", "IRBÉSARTAN", "CANDÉSARTAN", "OLMÉSARTAN",
    "TELMISARTAN", "SACUBITRIL", "HYDROCHLOROTHIAZIDE", "INDAPAMIDE", "FUROSÉMIDE", "BUMÉTANIDE",
    "SPIRONOLACTONE", "ÉPLÉRÉNONE", "RILMÉNIDINE", "MOXONIDINE", "URAPIDIL", "AMIODARONE", "FLÉCAÏNIDE",
    "DIGOXINE", "IVABRADINE", "TRINITRINE", "ISOSORBIDE", "NICORANDIL", "RANOLAZINE",
    # antithrombotics
    "ACIDE ACÉTYLSALICYLIQUE", "ACÉTYLSALICYLATE", "CLOPIDOGREL", "TICAGRÉLOR", "APIXABAN", "RIVAROXABAN",
    "DABIGATRAN", "EDOXABAN", "FLUINDIONE", "WARFARINE", "ACÉNOCOUMAROL", "ÉNOXAPARINE",
    # lipids
    "ATORVASTATINE", "ROSUVASTATINE", "SIMVASTATINE", "PRAVASTATINE", "ÉZÉTIMIBE", "FÉNOFIBRATE",
    # diabetes
    "METFORMINE", "GLICLAZIDE", "GLIMÉPIRIDE", "RÉPAGLINIDE", "SITAGLIPTINE", "VILDAGLIPTINE",
    "LINAGLIPTINE", "DAPAGLIFLOZINE", "EMPAGLIFLOZINE", "INSULINE GLARGINE", "DULAGLUTIDE", "SÉMAGLUTIDE",
    # psychotropics, neurology
    "ZOPICLONE", "ZOLPIDEM", "OXAZÉPAM", "ALPRAZOLAM", "BROMAZÉPAM", "LORAZÉPAM", "PRAZÉPAM", "DIAZÉPAM",
    "HYDROXYZINE", "ESCITALOPRAM", "CITALOPRAM", "SERTRALINE", "PAROXÉTINE", "FLUOXÉTINE", "VENLAFAXINE",
    "DULOXÉTINE", "MIRTAZAPINE", "MIANSÉRINE", "AMITRIPTYLINE", "RISPÉRIDONE", "QUÉTIAPINE", "OLANZAPINE",
    "HALOPÉRIDOL", "TIAPRIDE", "CYAMÉMAZINE", "DONÉPÉZIL", "RIVASTIGMINE", "GALANTAMINE", "MÉMANTINE",
    "LÉVÉTIRACÉTAM", "LAMOTRIGINE", "CARBAMAZÉPINE", "VALPROÏQUE", "PRÉGABALINE", "GABAPENTINE",
    "LÉVODOPA", "ROPINIROLE", "PRAMIPEXOLE",
    # analgesics, rheumatology
    "PARACÉTAMOL", "TRAMADOL", "CODÉINE", "MORPHINE", "OXYCODONE", "FENTANYL", "NÉFOPAM", "IBUPROFÈNE",
    "KÉTOPROFÈNE", "DICLOFÉNAC", "NAPROXÈNE", "CÉLÉCOXIB", "COLCHICINE", "ALLOPURINOL", "FÉBUXOSTAT",
    "PREDNISONE", "PREDNISOLONE",
    # digestive
    "OMÉPRAZOLE", "ÉSOMÉPRAZOLE", "LANSOPRAZOLE", "PANTOPRAZOLE", "RABÉPRAZOLE", "DOMPÉRIDONE",
    "MÉTOCLOPRAMIDE", "MACROGOL", "LACTULOSE", "LOPÉRAMIDE",
    # endocrine, bone, supplements
    "LÉVOTHYROXINE", "COLÉCALCIFÉROL", "CARBONATE DE CALCIUM", "ALENDRONIQUE", "RISÉDRONATE",
    "CHLORURE DE POTASSIUM", "ACIDE FOLIQUE",
    # urology
    "TAMSULOSINE", "ALFUZOSINE", "FINASTÉRIDE", "DUTASTÉRIDE", "SOLIFÉNACINE", "OXYBUTYNINE",
    # respiratory, eye, anti-infectives
    "TIOTROPIUM", "SALBUTAMOL", "LATANOPROST", "TIMOLOL", "AMOXICILLINE",
)  # fmt: skip

UNIT = r"(?:mg|g|µg|microgrammes?|nanogrammes?|UI|U\.I\.|%|POUR CENT|mmol|ml|mL|unités?)(?![A-Za-z])"
STRENGTH_RE = re.compile(rf"^(?P<name>.*?)\s+(?P<strength>\d[\d ,.]*\s*{UNIT}.*)$")
GLUE_RE = re.compile(r"(\d) (?=(?:mg|g|µg|microgrammes|UI|ml|mL|%)(?![A-Za-z]))")
BARE_MG_RE = re.compile(r"(\d+(?:,\d+)?) mg")
# Tokens that qualify the product, not the laboratory: kept when the laboratory is dropped.
QUALIFIERS = frozenset({"LP", "L.P.", "L.P", "L", "P", "L.", "P.", "LM", "XL", "RETARD", "SR"})
FORM_ABBREVIATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("comprimé pelliculé", ("cp pell", "cp")),
    ("comprimé", ("cp", "cpr")),
    ("gélule", ("gél", "gel")),
    ("sachet", ("sach",)),
    ("ampoule", ("amp",)),
    ("solution buvable", ("sol buv",)),
)
# Posology by the unit the patient takes, for forms a prescriber doses in units (not injectables...).
POSOLOGY_BY_FORM: dict[str, tuple[str, ...]] = {
    "sachet": ("1 sach/j", "1 sachet le midi", "1 sachet par jour"),
    "gélule": ("1 gél le matin", "1 gélule/j", "1 matin et soir", "1 le soir", "1/j"),
    "comprimé": ("1 le soir", "1 cp/j", "1 cp le matin", "1/2 cp le soir", "1 matin et soir", "1-0-1"),
    "capsule": ("1 le matin", "1 caps/j", "1/j"),
    "solution buvable": ("10 gouttes le soir", "1 dose le matin", "5 ml matin et soir"),
    "collyre": ("1 goutte le soir", "1 gtte matin et soir"),
}


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def fold(text: str) -> str:
    return strip_accents(text).upper().strip()


def words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", fold(text))


# --------------------------------------------------------------------------- BDPM


@dataclass(frozen=True)
class Product:
    cis: str
    denomination: str
    routes: frozenset[str]
    name: str  # denomination before the strength: "AMLODIPINE ARROW LAB"
    strength: str | None  # "5 mg", "37,5 mg/325 mg"
    form: str | None  # as a prescriber writes it: "comprimé pelliculé", "sachet"
    name_key: str  # folded name + strength: products sharing it differ only by form or holder
    dci_tokens: int  # leading name tokens made of substance words
    lab_tokens: int  # trailing name tokens that name the laboratory (0: brand, or bare DCI name)
    substances: tuple[str, ...]  # COMPO substance names (SA and FT), folded
    actives: frozenset[tuple[str, str]]  # (substance code, dosage) of the active moieties

    @property
    def bare_dci(self) -> bool:
        """Named by its substances only ('TRAMADOL LP'): any same-substance product is as good."""
        rest = self.name.split()[self.dci_tokens :]
        return self.dci_tokens > 0 and all(t in QUALIFIERS for t in rest)


def read_rows(path: Path) -> list[list[str]]:
    with lzma.open(path, "rt", encoding="cp1252", newline="") as handle:
        return [line.rstrip("\r\n").split("\t") for line in handle if line.strip()]


def prescriber_form(tail: str) -> str | None:
    """'poudre pour solution buvable en sachet-dose' -> 'sachet',
    'comprimé pelliculé sécable à libération prolongée' -> 'comprimé pelliculé LP'."""
    tail = tail.lower().strip()
    for container in ("sachet", "ampoule"):
        if container in tail:
            return container
    form = re.sub(r"\((?:e|s|es)\)", "", tail)
    form = form.replace("à libération prolongée", "LP").replace("à libération modifiée", "LM")
    form = re.split(r" en | édulcoré| \(", re.sub(r"\b(?:quadri)?sécable\b", "", form))[0]
    return " ".join(form.split()) or None


def normalise_dosage(dosage: str) -> str:
    match = re.match(r"([\d\s]+(?:,\d+)?)\s*(\S+)", dosage.strip())
    if not match:
        return dosage.strip()
    number = float(match.group(1).replace(" ", "").replace(",", "."))
    return f"{number:g} {match.group(2)}"


def active_moieties(rows: list[list[str]]) -> frozenset[tuple[str, str]]:
    """FT rows where the SA has one (the moiety, salt-free), else the SA rows."""
    by_link: dict[tuple[str, str], list[list[str]]] = defaultdict(list)
    for row in rows:
        by_link[(row[1], row[7])].append(row)
    actives: set[tuple[str, str]] = set()
    for group in by_link.values():
        chosen = [r for r in group if r[6] == "FT"] or group
        actives.update((r[2], normalise_dosage(r[4])) for r in chosen)
    return frozenset(actives)


def dci_prefix(tokens: list[str], substance_words: set[str]) -> int:
    """Number of leading name tokens made only of words of the product's substance names."""
    n = 0
    while n < len(tokens) and words(tokens[n]) and set(words(tokens[n])) <= substance_words:
        n += 1
    return n


def split_name(name: str, substance_words: set[str], lab_words: set[str], holder: str) -> tuple[int, int]:
    """(DCI tokens, laboratory tokens): (2, 1) for 'PARACETAMOL CODEINE ARROW', (1, 2) for
    'TRAMADOL BIOGARAN LP', (1, 0) for a bare DCI name, (0, 0) for a brand name.
    The laboratory is the trailing run, after a DCI prefix, of known laboratory words, words of the
    holder's name and qualifiers (LP...), holding at least one non-qualifier."""
    tokens = name.split()
    n_dci = dci_prefix(tokens, substance_words)
    holder_words = set(words(holder))

    def is_lab(token: str) -> bool:
        token_words = set(words(token))
        holder_word = bool(token_words) and token_words <= holder_words
        return token in QUALIFIERS or fold(token) in lab_words or holder_word

    start = len(tokens)
    while n_dci and start > n_dci and is_lab(tokens[start - 1]):
        start -= 1
    lab = tokens[start:]
    return n_dci, len(lab) if any(t not in QUALIFIERS for t in lab) else 0


def load_products() -> tuple[dict[str, Product], set[str], set[str]]:
    """Marketed non-homeopathic products with a composition, all CIS usable for sampling,
    and the vocabulary of every word in a BDPM product or substance name (for the typo check)."""
    compo: dict[str, list[list[str]]] = defaultdict(list)
    for row in read_rows(COMPO_FILE):
        compo[row[0]].append([cell.strip() for cell in row])
    vocabulary: set[str] = set()
    parsed: list[tuple[list[str], str, str | None, str | None]] = []
    for row in read_rows(CIS_FILE):
        head, _, tail = row[1].partition(", ")
        match = STRENGTH_RE.match(head)
        name, strength = (match["name"], match["strength"]) if match else (head, None)
        vocabulary.update(words(name))
        parsed.append((row, name.strip(), strength, prescriber_form(tail)))
    for rows in compo.values():
        for r in rows:
            vocabulary.update(words(r[3]))
    # Laboratory words: tokens that follow a DCI prefix for many different DCIs (ARROW, BIOGARAN, LAB...).
    followers: dict[str, set[str]] = defaultdict(set)
    for row, name, _, _ in parsed:
        subs = {w for r in compo.get(row[0], []) for w in words(r[3])}
        tokens = name.split()
        n_dci = dci_prefix(tokens, subs)
        for token in tokens[n_dci:] if n_dci else []:
            followers[fold(token)].add(fold(tokens[0]))
    lab_words = {token for token, dcis in followers.items() if len(dcis) >= 5}

    products: dict[str, Product] = {}
    sampleable: set[str] = set()
    for row, name, strength, form in parsed:
        cis, marketed, procedure = row[0], row[6] == "Commercialisée", row[5].lower()
        if not marketed or "homéo" in procedure or cis not in compo:
            continue
        subs = {w for r in compo[cis] for w in words(r[3])}
        n_dci, n_lab = split_name(name, subs, lab_words, row[10])
        products[cis] = Product(
            cis=cis,
            denomination=row[1],
            routes=frozenset(row[3].split(";")),
            name=name,
            strength=strength,
            form=form,
            name_key=fold(f"{name} {strength or ''}"),
            dci_tokens=n_dci,
            lab_tokens=n_lab,
            substances=tuple(sorted({fold(r[3]) for r in compo[cis]})),
            actives=active_moieties(compo[cis]),
        )
        if "importation parallèle" not in procedure:
            sampleable.add(cis)
    return products, sampleable, vocabulary


# --------------------------------------------------------------------------- sampling


def weighted_pick(rng: random.Random, candidates: list[Product]) -> Product:
    weights = [ORAL_WEIGHT if "orale" in p.routes else 1 for p in candidates]
    return rng.choices(candidates, weights=weights)[0]


def sample_products(products: dict[str, Product], sampleable: set[str], rng: random.Random) -> list[Product]:
    pool = [products[cis] for cis in sorted(sampleable)]
    by_substance: dict[str, list[Product]] = {}
    for dci in GERIATRIC_SUBSTANCES:
        pattern = re.compile(rf"(?<![A-Z]){re.escape(fold(dci))}(?![A-Z])")
        matching = [p for p in pool if any(pattern.search(s) for s in p.substances)]
        if matching:
            by_substance[dci] = matching
    chosen: dict[str, Product] = {}
    while len(chosen) < N_LINES:
        if rng.random() < GERIATRIC_SHARE:
            dci = rng.choice(sorted(by_substance))
            product = weighted_pick(rng, by_substance[dci])
        else:
            product = weighted_pick(rng, pool)
        chosen.setdefault(product.cis, product)
    return list(chosen.values())


# --------------------------------------------------------------------------- lines and perturbations


@dataclass(frozen=True)
class Line:
    name: tuple[str, ...]  # brand or DCI tokens
    lab: tuple[str, ...]
    strength: str | None
    form: str | None
    dose_unit: str | None = None  # POSOLOGY_BY_FORM key of the clean form, kept when the form is dropped
    posology: str | None = None
    ascii_only: bool = False


def render(line: Line) -> str:
    text = " ".join((*line.name, *line.lab))
    if line.strength:
        text += " " + line.strength
    if line.form:
        text += " " + line.form
    if line.posology:
        bare_number = line.strength is not None and re.fullmatch(r"[\d,. ]+", line.strength)
        text += line.posology if not bare_number else ", " + line.posology.lstrip(" ,-")
    return strip_accents(text) if line.ascii_only else text


def change_case(line: Line, rng: random.Random) -> Line:
    recase = str.lower if rng.random() < 0.5 else str.title
    return replace(line, name=tuple(map(recase, line.name)), lab=tuple(map(recase, line.lab)))


def remove_accents(line: Line, rng: random.Random) -> Line:
    return replace(line, ascii_only=True)


def drop_form(line: Line, rng: random.Random) -> Line:
    return replace(line, form=None)


def abbreviate_form(line: Line, rng: random.Random) -> Line:
    assert line.form is not None
    for full, abbreviations in FORM_ABBREVIATIONS:
        if full in line.form:
            return replace(line, form=line.form.replace(full, rng.choice(abbreviations), 1))
    return line


def drop_lab(line: Line, rng: random.Random) -> Line:
    return replace(line, lab=tuple(t for t in line.lab if t in QUALIFIERS))


def glue_unit(line: Line, rng: random.Random) -> Line:
    assert line.strength is not None
    return replace(line, strength=GLUE_RE.sub(r"\1", line.strength))


def decimal_point(line: Line, rng: random.Random) -> Line:
    assert line.strength is not None
    return replace(line, strength=re.sub(r"(\d),(\d)", r"\1.\2", line.strength))


def drop_mg(line: Line, rng: random.Random) -> Line:
    assert line.strength is not None
    return replace(line, strength=BARE_MG_RE.sub(r"\1", line.strength))


def add_posology(line: Line, rng: random.Random) -> Line:
    assert line.dose_unit is not None
    separator = rng.choice((", ", " ", " - "))
    return replace(line, posology=separator + rng.choice(POSOLOGY_BY_FORM[line.dose_unit]))


def make_typo(vocabulary: set[str]) -> Callable[[Line, random.Random], Line]:
    """One substitution, deletion or transposition inside one name word of >= 6 letters, never the
    first letter, never producing a word that exists in a BDPM product or substance name."""

    def typo(line: Line, rng: random.Random) -> Line:
        spots = [(i, m) for i, token in enumerate(line.name) for m in re.finditer(r"[A-Za-z]{6,}", token)]
        for _ in range(50):
            i, match = rng.choice(spots)
            word, pos = match[0], rng.randrange(1, len(match[0]) - 1)
            operation = rng.choice(("substitution", "deletion", "transposition"))
            if operation == "substitution":
                letter = rng.choice([c for c in "abcdefghijklmnopqrstuvwxyz" if c != word[pos].lower()])
                new = word[:pos] + (letter.upper() if word[pos].isupper() else letter) + word[pos + 1 :]
            elif operation == "deletion":
                new = word[:pos] + word[pos + 1 :]
            else:
                new = word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]
            if fold(new) != fold(word) and fold(new) not in vocabulary:
                token = line.name[i]
                name = list(line.name)
                name[i] = token[: match.start()] + new + token[match.end() :]
                return replace(line, name=tuple(name))
        return line

    return typo


Perturbation = tuple[Callable[[Line], bool], Callable[[Line, random.Random], Line]]


def perturbations(vocabulary: set[str]) -> dict[str, Perturbation]:
    """Name -> (applicable?, apply). Insertion order is the order of application."""
    return {
        "lab_dropped": (lambda ln: bool(ln.lab), drop_lab),
        "typo": (lambda ln: any(re.search(r"[A-Za-z]{6,}", t) for t in ln.name), make_typo(vocabulary)),
        "form_dropped": (lambda ln: ln.form is not None, drop_form),
        "form_abbreviated": (
            lambda ln: ln.form is not None and any(full in ln.form for full, _ in FORM_ABBREVIATIONS),
            abbreviate_form,
        ),
        "unit_glued": (lambda ln: ln.strength is not None and bool(GLUE_RE.search(ln.strength)), glue_unit),
        "decimal_point": (
            lambda ln: ln.strength is not None and bool(re.search(r"\d,\d", ln.strength)),
            decimal_point,
        ),
        "mg_dropped": (
            lambda ln: ln.strength is not None and bool(BARE_MG_RE.fullmatch(ln.strength)),
            drop_mg,
        ),
        "posology": (lambda ln: ln.dose_unit is not None, add_posology),
        "accents": (lambda ln: True, remove_accents),
        "case": (lambda ln: True, change_case),
    }


PRIORITY = {"decimal_point": 3.0}  # weighted draw order: rarely applicable, so favoured when it is
EXCLUSIVE = ({"form_dropped", "form_abbreviated"}, {"unit_glued", "mg_dropped"})


def choose(line: Line, catalogue: dict[str, Perturbation], rng: random.Random) -> list[str]:
    k = rng.choice((1, 2, 2, 3, 3))
    chosen: list[str] = []
    if line.lab and rng.random() < LAB_DROP_RATE:
        chosen.append("lab_dropped")
    candidates = [name for name, (ok, _) in catalogue.items() if name != "lab_dropped" and ok(line)]
    candidates.sort(key=lambda name: rng.random() ** (1 / PRIORITY.get(name, 1.0)), reverse=True)
    for name in candidates:
        if len(chosen) >= k:
            break
        if not any(name in group and group & set(chosen) for group in EXCLUSIVE):
            chosen.append(name)
    return chosen


def apply(
    line: Line, chosen: Iterable[str], catalogue: dict[str, Perturbation], rng: random.Random
) -> tuple[Line, list[str]]:
    """Apply in catalogue order; record only the perturbations that changed the text."""
    applied: list[str] = []
    for name, (_, perturb) in catalogue.items():
        if name in chosen:
            new = perturb(line, rng)
            if render(new) != render(line):
                applied.append(name)
            line = new
    return line, applied


def clean_line(product: Product) -> Line:
    tokens = tuple(product.name.split())
    cut = len(tokens) - product.lab_tokens
    form = product.form
    if form and re.search(r"\bL\.? ?P\b", product.name):  # "ZAMUDOL LP 200 mg gélule", not "gélule LP"
        form = form.replace(" LP", "")
    dose_unit = next((unit for unit in POSOLOGY_BY_FORM if form and unit in form), None)
    if "orale" not in product.routes and dose_unit != "collyre":
        dose_unit = None
    return Line(tokens[:cut], tokens[cut:], product.strength, form, dose_unit)


# --------------------------------------------------------------------------- ground truth


def accepted(product: Product, same_substances: bool, products: dict[str, Product]) -> list[str]:
    """CIS a resolver may return without being wrong: same name and strength (any form), or, for
    DCI lines, same active moieties and dosages; always sharing a route with the source product."""
    return sorted(
        p.cis
        for p in products.values()
        if p.routes & product.routes
        and ((same_substances and p.actives == product.actives) or p.name_key == product.name_key)
    )


def build_records() -> list[dict[str, object]]:
    rng = random.Random(SEED)
    products, sampleable, vocabulary = load_products()
    catalogue = perturbations(vocabulary)
    records: list[dict[str, object]] = []
    for number, product in enumerate(sample_products(products, sampleable, rng), start=1):
        clean = clean_line(product)
        line, applied = clean, list[str]()
        while not applied:
            line, applied = apply(clean, choose(clean, catalogue, rng), catalogue, rng)
        dci = "lab_dropped" in applied or product.bare_dci
        kind = "dci" if dci else "generic" if product.lab_tokens else "brand"
        records.append(
            {
                "id": number,
                "text": render(line),
                "cis": product.cis,
                "kind": kind,
                "perturbations": applied,
                "accept_same_substances": dci,
                "accept_cis": accepted(product, dci, products),
                "denomination": product.denomination,
            }
        )
    return records


def main() -> None:
    records = build_records()
    with OUT_FILE.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {len(records)} lines to {OUT_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
