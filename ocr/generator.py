"""Seeded generator of French ordonnances as images, with their ground truth.

Three layouts a pharmacist meets every day, printed by prescribing software:

- ``gp``: a general practitioner's ordonnance (header, drug line, posology line under it);
- ``bizone``: the ordonnance bizone of a patient in ALD, an upper zone for the affection de longue
  durée and a lower one for the rest;
- ``hospital``: a hospital discharge ordonnance, a table with Matin / Midi / Soir / Coucher columns.

Drugs are real marketed BDPM products (two in three from what geriatric general practice prescribes
most), written either as BDPM names them ("ELIQUIS 2,5 mg, comprimé pelliculé") or by their DCI
("AMLODIPINE 5 mg gél."), with posologies as prescribers write them. A sampled line is kept only when
the resolver reads its clean text as the product that was drawn: the ground truth of an item is what
the engine returns for the text as written, so the OCR is measured against typed input.

Variants: ``clean`` (the printout as rendered), ``scan`` (rotation, blur, noise, speckles, JPEG) and
``photo`` (a sheet photographed on a desk: perspective, uneven light and shadow, low resolution,
colour, JPEG). Fonts come from Debian packages (fonts-liberation, fonts-dejavu-core, and
fonts-comic-neue as the handwriting-like face); ``scripts/setup`` installs them.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from iatro.errors import IatroError
from iatro.kb.store import KnowledgeBase, ProductInfo
from iatro.model.prescription import LineInput
from iatro.model.report import LineReport
from iatro.resolve.index import product_head
from iatro.resolve.lines import Resolver
from iatro.text import fold
from iatro.units import dosing_unit
from ocr.model import Zone
from ocr.strength import format_strength

LayoutName = Literal["gp", "bizone", "hospital"]
Variant = Literal["clean", "scan", "photo"]
LAYOUTS: tuple[LayoutName, ...] = ("gp", "bizone", "hospital")
VARIANTS: tuple[Variant, ...] = ("clean", "scan", "photo")

DPI = 200  # the printout's resolution: A4 is 1654 x 2339 pixels
A4 = (1654, 2339)

_FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts/opentype"))
# (regular, bold) file names per family, as the Debian packages install them.
_FAMILIES: dict[str, tuple[str, str]] = {
    "liberation-sans": ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"),
    "liberation-serif": ("LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf"),
    "dejavu-sans": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    "dejavu-serif": ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf"),
    "liberation-mono": ("LiberationMono-Regular.ttf", "LiberationMono-Bold.ttf"),
    "comic-neue": ("ComicNeue-Regular.otf", "ComicNeue-Bold.otf"),
}
_PRINT_FAMILIES = ("liberation-sans", "liberation-serif", "dejavu-sans", "dejavu-serif", "liberation-mono")
HANDWRITING = "comic-neue"

# DCI (folded) -> weight: what French general practice prescribes most to patients over 75.
COMMON: dict[str, int] = {
    "paracetamol": 10, "amlodipine": 6, "furosemide": 6, "bisoprolol": 6, "ramipril": 5,
    "atorvastatine": 6, "simvastatine": 3, "rosuvastatine": 3, "omeprazole": 5, "esomeprazole": 4,
    "pantoprazole": 4, "acide acetylsalicylique": 5, "clopidogrel": 3, "apixaban": 4, "rivaroxaban": 3,
    "fluindione": 2, "warfarine": 1, "metformine": 5, "gliclazide": 2, "levothyroxine": 5, "zopiclone": 3,
    "oxazepam": 3, "alprazolam": 2, "escitalopram": 3, "sertraline": 2, "citalopram": 1, "mirtazapine": 2,
    "tramadol": 3, "amiodarone": 2, "digoxine": 1, "spironolactone": 2, "hydrochlorothiazide": 1,
    "indapamide": 2, "candesartan": 2, "valsartan": 2, "perindopril": 2, "irbesartan": 2, "losartan": 2,
    "allopurinol": 3, "colchicine": 1, "prednisolone": 1, "prednisone": 1, "cholecalciferol": 2,
    "macrogol 4000": 2, "tamsulosine": 2, "donepezil": 1, "memantine": 1, "quetiapine": 1,
    "risperidone": 1, "hydroxyzine": 1, "lercanidipine": 2, "nebivolol": 1, "diltiazem": 1,
    "verapamil": 1, "pravastatine": 1, "ezetimibe": 1, "sitagliptine": 1, "repaglinide": 1,
    "lansoprazole": 1, "domperidone": 1, "loperamide": 1, "lorazepam": 1, "bromazepam": 1,
    "venlafaxine": 1, "duloxetine": 1, "paroxetine": 1, "gabapentine": 1, "pregabaline": 1,
    "levodopa": 1, "ropinirole": 1, "calcium": 1, "alfuzosine": 1, "finasteride": 1, "trimebutine": 1,
    "phloroglucinol": 1, "cetirizine": 1, "amoxicilline": 1, "nitrofurantoine": 1, "doxycycline": 1,
    "alendronique acide": 1, "acide alendronique": 1, "ivabradine": 1, "molsidomine": 1, "nicorandil": 1,
}  # fmt: skip

_UNIT_WORDS: dict[str, tuple[tuple[str, str], ...]] = {
    # unit -> (singular, plural) spellings prescribers use
    "comprimé": (("cp", "cp"), ("comprimé", "comprimés"), ("cp", "cp"), ("cpr", "cpr")),
    "gélule": (("gélule", "gélules"), ("gél", "gél"), ("gélule", "gélules")),
    "sachet": (("sachet", "sachets"),),
    "capsule": (("capsule", "capsules"),),
}
_FORM_ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "comprimé": ("cp", "comprimé", "cp"),
    "gélule": ("gél", "gélule"),
    "sachet": ("sachet",),
    "capsule": ("capsule",),
}
# {d} dose, {u} unit word agreeing with it, {n} days.
_POSOLOGIES: tuple[tuple[str, int], ...] = (
    ("{d} {u} le matin", 10), ("{d} {u} le soir", 8), ("{d} {u} le midi", 2), ("{d} {u} matin et soir", 8),
    ("{d} {u} matin, midi et soir", 4), ("{d} {u} au coucher", 4), ("{d} {u} par jour", 4),
    ("{d} {u} 2 fois par jour", 2), ("{d} {u} 3 fois par jour", 2), ("{d} {u} le matin à jeun", 2),
    ("{d} {u} le soir au coucher", 1), ("{d} {u} le matin pendant {n} jours", 2),
    ("{d} {u} matin et soir pendant {n} jours", 2), ("{d} {u} 3 fois par jour si douleur", 3),
    ("{d} {u} si douleur, maximum 3 par jour", 2), ("{d} {u} le soir si besoin", 2), ("1-0-1", 3),
    ("1-0-0", 3), ("0-0-1", 2), ("1-1-1", 1), ("{d} {u}/j", 2), ("{d} {u} tous les 2 jours", 1),
    ("1 le matin", 2), ("{d} {u} le matin pendant 1 mois", 1), ("{d} {u} au petit déjeuner", 1),
)  # fmt: skip
_DOSES = (("1", 14), ("1/2", 3), ("2", 3), ("3/4", 1))
# As-needed posologies only for what is taken as needed (analgesics, anxiolytics and hypnotics,
# digestive and antihistamine drugs); "pendant N jours" only for short courses.
_AS_NEEDED_ATC = ("N02", "N05B", "N05C", "A03", "A06", "A07", "R06", "M01")
_SHORT_COURSE_ATC = ("J0", "N02", "M01", "H02", "A02", "A03", "A07", "R06")
# A discharge table's cells (Matin-Midi-Soir-Coucher), as geriatric wards write them.
_MATRICES = (
    ("1-0-0-0", 12), ("0-0-1-0", 6), ("1-0-1-0", 8), ("1-1-1-0", 3), ("0-0-0-1", 4), ("1/2-0-0-0", 2),
    ("1-0-1/2-0", 1), ("2-0-0-0", 1), ("1-1-0-0", 1), ("0-1-0-0", 1), ("2-0-2-0", 1), ("0-0-1/2-0", 1),
)  # fmt: skip

_FIRST = (
    "Marie", "Jean", "Philippe", "Nathalie", "Isabelle", "Pierre", "Sophie", "Laurent", "Catherine", "Michel",
    "Anne", "François", "Christine", "Olivier", "Sylvie", "Thierry", "Valérie", "Éric", "Hélène", "Bruno",
)  # fmt: skip
_LAST = (
    "MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND", "LEROY", "MOREAU",
    "SIMON", "LAURENT", "LEFEBVRE", "MICHEL", "GARCIA", "DAVID", "BERTRAND", "ROUX", "VINCENT", "FOURNIER",
    "MOREL", "GIRARD", "ANDRÉ", "LEFÈVRE", "MERCIER", "DUPONT", "LAMBERT", "BONNET", "FRANÇOIS", "MARTINEZ",
)  # fmt: skip
_PATIENT_FIRST = (
    "Jeanne", "Marcel", "Germaine", "Raymond", "Simone", "Louis", "Yvonne", "André", "Suzanne", "Roger",
    "Paulette", "René", "Odette", "Henri", "Lucienne", "Maurice", "Denise", "Robert", "Madeleine", "Georges",
)  # fmt: skip
_CITIES = (
    ("Paris", "75011"), ("Lyon", "69003"), ("Marseille", "13005"), ("Toulouse", "31000"), ("Nantes", "44000"),
    ("Rennes", "35000"), ("Lille", "59000"), ("Bordeaux", "33000"), ("Dijon", "21000"), ("Tours", "37000"),
    ("Angers", "49000"), ("Limoges", "87000"), ("Nancy", "54000"), ("Rouen", "76000"), ("Brest", "29200"),
)  # fmt: skip
_STREETS = (
    "rue de la République", "avenue Jean Jaurès", "boulevard Victor Hugo", "rue Pasteur",
    "place de la Mairie", "rue du Général de Gaulle", "allée des Tilleuls", "rue Nationale",
    "avenue de la Gare", "rue des Écoles",
)  # fmt: skip
_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
    "novembre", "décembre",
)  # fmt: skip
_HOSPITAL_UNITS = (
    "Service de Gériatrie aiguë", "Unité de court séjour gériatrique", "Service de Médecine interne",
    "Service de Soins de suite et de réadaptation", "Service de Cardiologie",
)  # fmt: skip
_RENEWALS = (
    "Ordonnance renouvelable 2 fois", "À renouveler 3 fois", "Traitement à poursuivre, renouvelable 5 fois",
)  # fmt: skip
ALD_HEADING = (
    "Prescriptions relatives au traitement de l'affection de longue durée reconnue (liste ou hors liste)",
    "(AFFECTION EXONÉRANTE)",
)
NON_ALD_HEADING = (
    "Prescriptions SANS RAPPORT avec l'affection de longue durée",
    "(MALADIES INTERCURRENTES)",
)
TABLE_COLUMNS = ("Matin", "Midi", "Soir", "Coucher")


class GeneratorError(IatroError):
    """The generator cannot run here (a font is missing: run scripts/setup)."""


# ------------------------------------------------------------------------------------- ground truth


@dataclass(frozen=True, slots=True)
class TruthItem:
    drug_text: str  # the drug line as printed
    posology_text: str  # the posology as printed (a table row's cells as "1-0-1-0")
    zone: Zone | None
    expected: LineReport  # what the resolver returns for the text as printed
    strength: str  # the strength of the product drawn, formatted like OcrLine.strength


@dataclass(frozen=True, slots=True)
class HeaderTruth:
    rpps: str
    date: dt.date
    patient_age: int | None
    patient_weight_kg: float | None


@dataclass(frozen=True, slots=True)
class TextRun:
    """A piece of text drawn on the printout (pixels at 200 dpi, top-left origin)."""

    x: float
    y: float
    text: str
    size: float
    bold: bool


@dataclass(frozen=True, slots=True)
class GeneratedPage:
    seed: int
    layout: LayoutName
    variant: Variant
    data: bytes  # the file as a scanner or a telephone would save it
    suffix: str  # ".png", ".jpg" or ".tif"
    items: tuple[TruthItem, ...]
    header: HeaderTruth
    runs: tuple[TextRun, ...] = field(repr=False)  # what was printed, for a PDF with a text layer
    family: str = ""  # the face the page is printed in (HANDWRITING for the handwriting-like one)


# ---------------------------------------------------------------------------------------- drug pool


@dataclass(frozen=True, slots=True)
class _Drug:
    product: ProductInfo
    head: str  # BDPM name before the form ("ELIQUIS 2,5 mg")
    strength_text: str  # the head after the name ("2,5 mg")
    unit: str  # the unit a posology counts: comprimé, gélule, sachet, capsule
    dci: str | None  # the substance name, for a single-substance product


_STRENGTH_START = re.compile(r"\s(\d[\d\s,./]*\s*(?:mg|g|microgrammes?|µg|UI|mmol|%)\b.*)$", re.IGNORECASE)


class DrugPool:
    """Marketed oral solid BDPM products a GP or a geriatrician prescribes, from one loaded KB."""

    def __init__(self, kb: KnowledgeBase, resolver: Resolver) -> None:
        self.kb = kb
        self.resolver = resolver
        self.drugs: list[_Drug] = []
        self.by_common: dict[str, list[_Drug]] = {}
        common_ids = {sid: name for name in COMMON for sid in kb.substance_ids_by_name.get(fold(name), ())}
        for product in kb.products:
            drug = self._drug(product)
            if drug is None:
                continue
            self.drugs.append(drug)
            ids = product.substance_ids
            if len(ids) == 1 and ids[0] in common_ids:
                self.by_common.setdefault(common_ids[ids[0]], []).append(drug)
        self.common_names = sorted(self.by_common)
        self.common_weights = [COMMON[name] for name in self.common_names]

    def _drug(self, product: ProductInfo) -> _Drug | None:
        if not product.marketed or product.homeopathic or not product.components:
            return None
        if "orale" not in product.routes or len(product.components) > 2:
            return None
        unit = dosing_unit(product.form)
        if unit not in _FORM_ABBREVIATIONS or "liberation" in fold(product.form):
            return None  # prolonged-release forms are written with "LP", left for later work
        head = product_head(product.name)
        found = _STRENGTH_START.search(head)
        if found is None or len(head) > 48:
            return None
        dci = None
        if len(product.components) == 1:
            dci = self.kb.substances[product.components[0].substance_id].name
        return _Drug(product, head, found.group(1).strip(), unit, dci)

    def sample(self, rng: random.Random) -> _Drug:
        if rng.random() < 0.67 and self.common_names:
            name = rng.choices(self.common_names, self.common_weights)[0]
            return rng.choice(self.by_common[name])
        return rng.choice(self.drugs)


@cache
def _font_path(family: str, bold: bool) -> Path:
    name = _FAMILIES[family][1 if bold else 0]
    for root in _FONT_DIRS:
        found = sorted(root.rglob(name))
        if found:
            return found[0]
    raise GeneratorError(f"font {name} is not installed (scripts/setup installs the fonts packages)")


@cache
def _font(family: str, bold: bool, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(_font_path(family, bold)), size)


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = int(ch)
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _rpps(rng: random.Random) -> str:
    body = "10" + "".join(str(rng.randint(0, 9)) for _ in range(8))
    return next(body + str(key) for key in range(10) if luhn_ok(body + str(key)))


# ------------------------------------------------------------------------------------------ drawing


class _Canvas:
    def __init__(self, family: str, size: int) -> None:
        self.image = Image.new("L", A4, 255)
        self.draw = ImageDraw.Draw(self.image)
        self.family = family
        self.size = size
        self.runs: list[TextRun] = []

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: int | None = None,
        bold: bool = False,
        family: str | None = None,
        anchor: str = "la",
        ink: int = 0,
    ) -> float:
        """Draw and return the width drawn."""
        font = _font(family or self.family, bold, size or self.size)
        width = float(self.draw.textlength(text, font=font))
        if anchor == "ra":
            x -= width
        elif anchor == "ma":
            x -= width / 2
        self.draw.text((x, y), text, font=font, fill=ink)
        self.runs.append(TextRun(x, y, text, float(size or self.size), bold))
        return width

    def width(self, text: str, size: int | None = None, bold: bool = False) -> float:
        return float(self.draw.textlength(text, font=_font(self.family, bold, size or self.size)))

    def rule(self, y: float, x0: float, x1: float, ink: int = 120, thickness: int = 2) -> None:
        self.draw.line([(x0, y), (x1, y)], fill=ink, width=thickness)


def _date_text(rng: random.Random, date: dt.date, city: str) -> str:
    style = rng.randrange(3)
    if style == 0:
        return f"Le {date:%d/%m/%Y}"
    if style == 1:
        return f"{city}, le {date.day} {_MONTHS[date.month - 1]} {date.year}"
    return f"{date:%d/%m/%Y}"


class _Page:
    """Draws one ordonnance and keeps its ground truth."""

    def __init__(self, pool: DrugPool, rng: random.Random, layout: LayoutName) -> None:
        self.pool = pool
        self.rng = rng
        self.layout = layout
        family = rng.choice(_PRINT_FAMILIES)
        if layout == "gp" and rng.random() < 0.15:
            family = HANDWRITING  # a few prescribers still print with a handwriting-like face
        size = rng.randint(29, 34) if layout != "hospital" else rng.randint(27, 31)
        self.canvas = _Canvas(family, size)
        self.items: list[TruthItem] = []
        self.used: set[str] = set()
        self.date = dt.date(2026, 1, 5) + dt.timedelta(days=rng.randrange(330))
        self.age = rng.randint(72, 97)
        self.weight = float(rng.randint(42, 95)) if rng.random() < 0.6 else None
        self.show_age = rng.random() < 0.85
        self.rpps = _rpps(rng)
        self.city, self.postcode = rng.choice(_CITIES)
        self.margin = rng.randint(110, 170)
        self.line_gap = 1.45

    # -- items ------------------------------------------------------------------------------
    def _posology(self, unit: str, atc: str | None) -> str:
        rng = self.rng
        code = atc or ""
        allowed = [
            (t, w)
            for t, w in _POSOLOGIES
            if (code.startswith(_AS_NEEDED_ATC) or not any(k in t for k in ("si douleur", "si besoin")))
            and (code.startswith(_SHORT_COURSE_ATC) or "pendant" not in t)
        ]
        template = rng.choices([t for t, _ in allowed], [w for _, w in allowed])[0]
        dose = rng.choices([d for d, _ in _DOSES], [w for _, w in _DOSES])[0]
        if "si douleur" in template or "fois par jour" in template:
            dose = "1"
        singular, plural = rng.choice(_UNIT_WORDS[unit])
        word = plural if dose not in ("1", "1/2", "3/4") else singular
        return template.format(d=dose, u=word, n=rng.choice((5, 7, 10, 14, 15, 21, 30)))

    def _drug_text(self, drug: ProductInfo, head: str, strength: str, unit: str, dci: str | None) -> str:
        rng = self.rng
        if dci is not None and rng.random() < 0.4:
            name = dci.upper() if rng.random() < 0.7 else dci.capitalize()
            if "microgramme" in strength and rng.random() < 0.5:
                strength = re.sub(r"microgrammes?", "µg", strength)
            text = f"{name} {strength}"
        else:
            text = head
        style = rng.random()
        if style < 0.35 and ", " in drug.name:
            text += ", " + drug.name.split(", ", 1)[1]
        elif style < 0.7:
            text += " " + rng.choice(_FORM_ABBREVIATIONS[unit])
        return text

    def draw_item(self, zone: Zone | None, table: bool = False) -> tuple[str, str] | None:
        """Sample a drug and a posology that resolve from their clean text; record the truth."""
        for _ in range(40):
            drug = self.pool.sample(self.rng)
            if drug.product.cis in self.used:
                continue
            text = self._drug_text(drug.product, drug.head, drug.strength_text, drug.unit, drug.dci)
            if table:
                posology = self.rng.choices([m for m, _ in _MATRICES], [w for _, w in _MATRICES])[0]
            else:
                posology = self._posology(drug.unit, drug.product.atc)
            expected = self.pool.resolver.resolve(LineInput(text=text, posology=posology))
            if not self._as_drawn(expected, drug.product):
                continue
            strength = expected_strength(self.pool.resolver, expected, text)
            if strength is None:
                continue
            self.used.add(drug.product.cis)
            self.items.append(TruthItem(text, posology, zone, expected, strength))
            return text, posology
        return None

    @staticmethod
    def _as_drawn(report: LineReport, product: ProductInfo) -> bool:
        if report.status != "resolved" or report.posology is None or not report.posology.parsed:
            return False
        if report.match is not None and "not-found" in report.match:
            return False
        return report.substance_ids == product.substance_ids

    # -- blocks -----------------------------------------------------------------------------
    def _prescriber_block(self, y: float) -> float:
        c, rng = self.canvas, self.rng
        step = c.size * self.line_gap
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        c.text(self.margin, y, f"Docteur {name}", bold=True)
        y += step
        c.text(self.margin, y, rng.choice(("Médecin généraliste", "Médecine générale", "Médecin gériatre")))
        y += step
        c.text(self.margin, y, f"{rng.randint(1, 120)} {rng.choice(_STREETS)}", size=c.size - 4)
        y += step * 0.85
        c.text(self.margin, y, f"{self.postcode} {self.city.upper()}", size=c.size - 4)
        y += step * 0.85
        phone = "0" + " ".join(f"{rng.randint(10, 99)}" for _ in range(5))[1:]
        c.text(self.margin, y, f"Tél. : {phone}", size=c.size - 4)
        y += step * 0.85
        c.text(self.margin, y, f"RPPS : {self.rpps}", size=c.size - 4)
        y += step * 0.85
        am = f"{rng.randint(10, 95)} 1 {rng.randint(10000, 99999)} {rng.randint(0, 9)}"
        c.text(self.margin, y, f"N° AM : {am}", size=c.size - 4)
        return y + step

    def _patient_block(self, y: float) -> float:
        c, rng = self.canvas, self.rng
        step = c.size * self.line_gap
        title = rng.choice(("Mme", "M.", "Madame", "Monsieur"))
        who = f"{title} {rng.choice(_LAST)} {rng.choice(_PATIENT_FIRST)}"
        if self.show_age:
            who += f", {self.age} ans"
        c.text(self.margin + 40, y, who, bold=rng.random() < 0.5)
        y += step
        if self.weight is not None:
            c.text(self.margin + 40, y, f"Poids : {self.weight:g} kg")
            y += step
        return y + step * 0.4

    def _items(self, y: float, count: int, zone: Zone | None, style: int, bottom: float) -> float:
        c = self.canvas
        step = c.size * self.line_gap
        for number in range(1, count + 1):
            if y + 3 * step > bottom:
                break
            drawn = self.draw_item(zone)
            if drawn is None:
                break
            text, posology = drawn
            bold = style in (0, 2)
            if style == 1:
                c.text(self.margin + 20, y, f"{text}, {posology}")
                y += step * 1.3
                continue
            label = f"{number}) {text}" if style == 2 else text
            c.text(self.margin + 20, y, label, bold=bold)
            y += step
            c.text(self.margin + 80, y, posology)
            y += step * 1.5
        return y

    def _signature(self, y: float) -> None:
        c = self.canvas
        c.text(A4[0] - self.margin, y, f"Dr {self.rng.choice(_LAST).capitalize()}", size=c.size + 6,
               family=HANDWRITING, anchor="ra", ink=40)  # fmt: skip

    # -- layouts ----------------------------------------------------------------------------
    def gp(self) -> None:
        c, rng = self.canvas, self.rng
        y = self._prescriber_block(self.margin)
        c.text(A4[0] - self.margin, self.margin, _date_text(rng, self.date, self.city), anchor="ra")
        c.rule(y, self.margin, A4[0] - self.margin)
        y += c.size
        y = self._patient_block(y)
        if rng.random() < 0.5:
            c.text(A4[0] / 2, y, "ORDONNANCE", bold=True, anchor="ma", size=c.size + 4)
            y += c.size * 2.2
        footer = A4[1] - self.margin - 5 * c.size
        y = self._items(y, rng.randint(3, 8), None, rng.randrange(3), footer)
        y += c.size
        if rng.random() < 0.6:
            c.text(self.margin + 20, y, rng.choice(_RENEWALS))
        self._signature(max(y + 2 * c.size, footer))
        c.text(A4[0] / 2, A4[1] - self.margin, "En cas d'urgence, composer le 15", size=c.size - 8,
               anchor="ma", ink=70)  # fmt: skip

    def bizone(self) -> None:
        c, rng = self.canvas, self.rng
        y = self._prescriber_block(self.margin)
        c.text(A4[0] - self.margin, self.margin, _date_text(rng, self.date, self.city), anchor="ra")
        y = self._patient_block(y + c.size * 0.5)
        left, right = self.margin - 40, A4[0] - self.margin + 40
        small = c.size - 6
        c.rule(y, left, right, ink=60, thickness=3)
        y += c.size * 0.6
        for part in ALD_HEADING:
            c.text(A4[0] / 2, y, part, size=small, bold=True, anchor="ma")
            y += small * 1.35
        y += c.size * 0.6
        middle = max(A4[1] * 0.55, y + 3 * c.size * self.line_gap)
        style = rng.randrange(3)
        y = self._items(y, rng.randint(2, 5), "ald", style, middle - c.size)
        y = max(y + c.size * 0.5, middle)
        c.rule(y, left, right, ink=60, thickness=3)
        y += c.size * 0.6
        for part in NON_ALD_HEADING:
            c.text(A4[0] / 2, y, part, size=small, bold=True, anchor="ma")
            y += small * 1.35
        y += c.size * 0.6
        footer = A4[1] - self.margin - 3 * c.size
        y = self._items(y, rng.randint(1, 4), "hors_ald", style, footer)
        self._signature(footer)

    def hospital(self) -> None:
        c, rng = self.canvas, self.rng
        y = float(self.margin)
        c.text(A4[0] / 2, y, f"CENTRE HOSPITALIER DE {self.city.upper()}", bold=True, anchor="ma",
               size=c.size + 4)  # fmt: skip
        y += c.size * 1.7
        c.text(A4[0] / 2, y, rng.choice(_HOSPITAL_UNITS), anchor="ma")
        y += c.size * 1.5
        doctor = f"Dr {rng.choice(_FIRST)} {rng.choice(_LAST)}, praticien hospitalier"
        c.text(self.margin, y, doctor, size=c.size - 2)
        y += c.size * 1.3
        c.text(self.margin, y, f"RPPS : {self.rpps}", size=c.size - 2)
        y += c.size * 2
        c.text(A4[0] / 2, y, "ORDONNANCE DE SORTIE", bold=True, anchor="ma", size=c.size + 2)
        y += c.size * 2
        y = self._patient_block(y)
        c.text(self.margin + 40, y, f"Date de sortie : {self.date:%d/%m/%Y}")
        y += c.size * 2.4
        # The table: drug column, then the four moments of the day.
        left, right = self.margin - 30, A4[0] - self.margin + 30
        drug_width = (right - left) * rng.uniform(0.56, 0.62)
        col_width = (right - left - drug_width) / 4
        centres = [left + drug_width + col_width * (i + 0.5) for i in range(4)]
        c.rule(y - c.size * 0.4, left, right, ink=90)
        c.text(left + 20, y, "Médicament", bold=True)
        for centre, label in zip(centres, TABLE_COLUMNS, strict=True):
            c.text(centre, y, label, bold=True, anchor="ma")
        y += c.size * 1.5
        c.rule(y - c.size * 0.3, left, right, ink=90)
        bottom = A4[1] - self.margin - 5 * c.size
        for _ in range(rng.randint(4, 11)):
            if y + 2 * c.size > bottom:
                break
            drawn = None
            for _attempt in range(5):
                drawn = self.draw_item(None, table=True)
                if drawn is None:
                    break
                if c.width(drawn[0]) < drug_width - 40:
                    break
                self.items.pop()  # too wide for its column: draw another
                drawn = None
            if drawn is None:
                continue
            text, posology = drawn
            c.text(left + 20, y, text)
            for centre, cell in zip(centres, posology.split("-"), strict=True):
                if cell != "0":
                    c.text(centre, y, cell, anchor="ma")
            y += c.size * 1.6
            c.rule(y - c.size * 0.35, left, right, ink=170, thickness=1)
        y += c.size
        c.text(self.margin, y, "Traitement à poursuivre jusqu'à la prochaine consultation.", size=c.size - 2)
        self._signature(y + 3 * c.size)


def expected_strength(resolver: Resolver, report: LineReport, text: str) -> str | None:
    """The strength a resolved line stands for: its product's, else the one written in the text."""
    from iatro.resolve.lines import split_line

    if report.product is not None:
        product = resolver.kb.by_cis.get(report.product.cis)
        if product is None:
            return None
        for entry in resolver.index.stems.get(product.stem, ()):
            if entry.product.cis == product.cis:
                return format_strength(entry.strengths) or None
        return None
    written = split_line(text).strengths
    return format_strength(written) or None


# ------------------------------------------------------------------------------------- degradation


def _f32(array: npt.ArrayLike) -> npt.NDArray[np.float32]:
    return np.asarray(array, dtype=np.float32)


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False, compress_level=3)
    return out.getvalue()


def _scan(page: Image.Image, rng: random.Random) -> tuple[bytes, str]:
    np_rng = np.random.default_rng(rng.randrange(2**32))
    arr = np.asarray(page, dtype=np.float32)
    paper, ink = rng.uniform(228, 250), rng.uniform(15, 60)
    arr = ink + (paper - ink) * arr / 255.0
    h, w = arr.shape
    angle = rng.uniform(-3.0, 3.0)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, rng.uniform(0.98, 1.02))
    matrix[:, 2] += np.array([rng.uniform(-15, 15), rng.uniform(-15, 15)])
    arr = _f32(cv2.warpAffine(arr, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=(paper,)))
    arr = _f32(cv2.GaussianBlur(arr, (0, 0), rng.uniform(0.35, 0.9)))
    arr = arr + np_rng.normal(0.0, rng.uniform(3.0, 10.0), arr.shape).astype(np.float32)
    for _ in range(rng.randint(200, 1500)):  # dust and toner specks
        x, y = rng.randrange(w), rng.randrange(h)
        r = rng.choice((1, 1, 2))
        cv2.circle(arr, (x, y), r, (rng.uniform(20, 120),), -1)
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="L")
    if rng.random() < 0.2:
        out = io.BytesIO()
        image.save(out, format="TIFF", compression="tiff_lzw")
        return out.getvalue(), ".tif"
    return _jpeg(image, rng.randint(35, 75)), ".jpg"


def _photo(page: Image.Image, rng: random.Random) -> tuple[bytes, str]:
    np_rng = np.random.default_rng(rng.randrange(2**32))
    target_w = rng.randint(1100, 1500)  # a downsized telephone picture: 130-180 dpi on the sheet
    scale = target_w / A4[0]
    page_w, page_h = int(A4[0] * scale), int(A4[1] * scale)
    sheet = cv2.resize(np.asarray(page), (page_w, page_h), interpolation=cv2.INTER_AREA).astype(np.float32)
    tint = np.array([rng.uniform(235, 252), rng.uniform(230, 248), rng.uniform(215, 240)], np.float32)
    ink = rng.uniform(20, 55)
    rgb = ink + (tint[None, None, :] - ink) * (sheet[:, :, None] / 255.0)
    canvas_w, canvas_h = int(page_w * rng.uniform(1.08, 1.22)), int(page_h * rng.uniform(1.06, 1.16))
    desk = np.array([rng.uniform(40, 140), rng.uniform(35, 120), rng.uniform(25, 100)], np.float32)
    background = np.empty((canvas_h, canvas_w, 3), np.float32)
    background[:] = desk
    background += np_rng.normal(0, 8, (canvas_h, canvas_w, 1)).astype(np.float32)
    ox, oy = (canvas_w - page_w) / 2, (canvas_h - page_h) / 2
    jitter = 0.045
    src = np.array([[0, 0], [page_w, 0], [page_w, page_h], [0, page_h]], np.float32)
    dst = np.array(
        [
            [ox + rng.uniform(-jitter, jitter) * page_w, oy + rng.uniform(-jitter, jitter) * page_h]
            for ox, oy in ((ox, oy), (ox + page_w, oy), (ox + page_w, oy + page_h), (ox, oy + page_h))
        ],
        np.float32,
    )
    homography = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(rgb, homography, (canvas_w, canvas_h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones((page_h, page_w), np.float32), homography, (canvas_w, canvas_h))
    image = _f32(background * (1 - mask[:, :, None]) + warped * mask[:, :, None])
    # Uneven light: a tilted plane of brightness, a vignette, sometimes a soft shadow.
    yy, xx = np.mgrid[0:canvas_h, 0:canvas_w].astype(np.float32)
    xx, yy = xx / canvas_w - 0.5, yy / canvas_h - 0.5
    gx, gy = rng.uniform(-0.35, 0.35), rng.uniform(-0.35, 0.35)
    light = 0.92 + gx * xx + gy * yy - rng.uniform(0.1, 0.35) * (xx**2 + yy**2)
    if rng.random() < 0.5:
        shadow = np.zeros((canvas_h, canvas_w), np.float32)
        cx = rng.uniform(0, canvas_w)
        pts = np.array([[cx, 0], [cx + rng.uniform(-200, 200), canvas_h], [canvas_w * 2, canvas_h],
                        [canvas_w * 2, 0]], np.int32)  # fmt: skip
        cv2.fillPoly(shadow, [pts], (1.0,))
        shadow = _f32(cv2.GaussianBlur(shadow, (0, 0), canvas_w * 0.03))
        light *= 1 - rng.uniform(0.15, 0.35) * shadow
    image *= light[:, :, None]
    image = _f32(cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 0.9)))
    image += np_rng.normal(0, rng.uniform(2.0, 6.0), image.shape).astype(np.float32)
    out = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), mode="RGB")
    return _jpeg(out, rng.randint(60, 88)), ".jpg"


def degrade(page: Image.Image, variant: Variant, rng: random.Random) -> tuple[bytes, str]:
    if variant == "clean":
        return _png(page), ".png"
    if variant == "scan":
        return _scan(page, rng)
    return _photo(page, rng)


# ------------------------------------------------------------------------------------------ public


def render_page(pool: DrugPool, seed: int, layout: LayoutName) -> tuple[Image.Image, _Page]:
    rng = random.Random(seed)
    page = _Page(pool, rng, layout)
    getattr(page, layout)()
    return page.canvas.image, page


def generate_page(pool: DrugPool, seed: int, layout: LayoutName, variant: Variant) -> GeneratedPage:
    """One ordonnance, the same for the same seed, layout and variant on every machine with the same
    fonts and libraries."""
    image, page = render_page(pool, seed, layout)
    data, suffix = degrade(image, variant, random.Random(seed * 7919 + VARIANTS.index(variant)))
    header = HeaderTruth(
        rpps=page.rpps,
        date=page.date,
        patient_age=page.age if page.show_age else None,
        patient_weight_kg=page.weight,
    )
    return GeneratedPage(
        seed,
        layout,
        variant,
        data,
        suffix,
        tuple(page.items),
        header,
        tuple(page.canvas.runs),
        page.canvas.family,
    )


def corpus(
    pool: DrugPool, per_variant: int, seed: int = 20261124, variants: Sequence[Variant] = VARIANTS
) -> Iterator[GeneratedPage]:
    """``per_variant`` pages of each variant, the layouts in turn."""
    for variant in variants:
        for i in range(per_variant):
            yield generate_page(pool, seed + i, LAYOUTS[i % len(LAYOUTS)], variant)


def _pdf_string(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def text_pdf(pages: Sequence[Sequence[TextRun]]) -> bytes:
    """A PDF whose pages carry the runs as real text (Helvetica), the way prescribing software exports
    an ordonnance: it exercises the text-layer path of the pipeline."""
    scale = 72.0 / DPI
    width, height = A4[0] * scale, A4[1] * scale
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, once the page objects are numbered
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    kids = []
    for runs in pages:
        ops = []
        for run in runs:
            size = run.size * scale * 0.92
            baseline = height - (run.y + run.size * 0.8) * scale
            font = b"/F2" if run.bold else b"/F1"
            ops.append(
                b"BT %s %.2f Tf 1 0 0 1 %.2f %.2f Tm %s Tj ET"
                % (font, size, run.x * scale, baseline, _pdf_string(run.text))
            )
        stream = b"\n".join(ops)
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Resources << /Font << /F1 3 0 R "
            b"/F2 4 0 R >> >> /Contents %d 0 R >>" % (width, height, content)
        )
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def image_pdf(images: Sequence[Image.Image]) -> bytes:
    """A PDF of page images with no text layer, as a scanner saves it."""
    out = io.BytesIO()
    first, *rest = [im.convert("RGB") if im.mode not in ("L", "RGB") else im for im in images]
    first.save(out, format="PDF", resolution=DPI, save_all=True, append_images=rest)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def as_array(image: Image.Image) -> npt.NDArray[np.uint8]:
    return np.asarray(image.convert("L"), dtype=np.uint8)


def simple_page(lines: Sequence[str], family: str = "liberation-sans", size: int = 32) -> Image.Image:
    """A plain printed A4 page holding these lines, one under the other: for tests of given lines."""
    canvas = _Canvas(family, size)
    y = 160.0
    for line in lines:
        indent = 220 if line[:1].isdigit() else 160
        canvas.text(indent, y, line)
        y += size * 1.6
    return canvas.image


def png(image: Image.Image) -> bytes:
    return _png(image)
