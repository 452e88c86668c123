"""French posology parser: "1 cp matin et soir" -> :class:`~iatro.model.report.Posology`.

The parser reads a posology the way a prescriber writes it on an ordonnance or a discharge letter
("1-0-1", "1/2 cp le soir", "1 g x 3/j si douleur, max 4 g/j", "2 gél. le soir pdt 10 j") and never
guesses: the whole string must be understood, otherwise the result is ``parsed=False`` with the
text kept and a ``note`` saying what was not understood. Case, accents and spacing do not matter.

How it works: the text is folded (lower case, no accents, "½" -> "1/2", "0,5" -> "0.5"), cut into
phrase tokens by one compiled regular expression (a dose, a frequency, a moment, a duration, a
filler phrase such as "à jeun"...), and the tokens are interpreted. Any word that is neither a
token nor a harmless filler word ("le", "prendre", "voie orale"...) makes the posology unparsed.

Normalised units (``Posology.unit``):
    "comprimé" (cp, cpr, comp, cps), "gélule" (gél, gel), "sachet" (sach), "ampoule" (amp),
    "injection" (inj, piqûre, stylo, seringue), "goutte" (gtt, gtte), "bouffée" (bouf, inhalation,
    puff, pulvérisation: every actuation of a spray), "suppositoire" (supp, suppo), "patch"
    (timbre), "capsule" (caps), "cuillère à soupe" (càs, cs), "cuillère à café" (càc), "dose"
    (mesurette), "application", "mg", "g", "µg" (ug, mcg), "ml", "ui" (unités).
    No unit written ("1-0-1", "1 le soir") gives ``unit=None``: the resolver knows the form.

Moments (``Posology.moments``) are an ordered subset of ("matin", "midi", "soir", "coucher").
"au petit déjeuner"/"au lever" are "matin", "au déjeuner" is "midi", "au dîner" is "soir", "la nuit"
and "le soir au coucher" are "coucher"; "à chaque repas" is matin, midi and soir. A matrix "a-b-c"
is matin-midi-soir and "a-b-c-d" adds coucher.

Decisions (each one is what a pharmacist would read, never an invented value):
- Periods: a week is 7 days and a month 30 days ("1 injection par mois" -> 1/30 per day,
  "pendant 1 mois" -> 30 days, "1 an" -> 365 days). "1 cp le lundi" is once a week (1/7 per day);
  "le lundi et le jeudi" is 2/7, "du lundi au vendredi" and "sauf le week-end" 5/7, "5 j/7" 5/7.
  Moments say when in the day, not how often over the week ("1 cp le dimanche matin" -> 1/7).
- "QSP 3 mois" is read as the duration (90 days): it is how long the prescription covers.
- An amount per period ("2 cp par jour", "1 g/j en 2 prises", "2 cp/j matin et soir") is shared
  between the intakes the text states (split, moments); when it states none, it is one intake
  ("2 cp par jour" -> 2 cp once a day, with a note). The daily total is what the text says.
- A bare count with no dose ("1/j", "2 par jour") is an amount per period in the product's unit,
  unless the line is as-needed.
- Unequal doses ("1/2-0-1", "1 cp le matin et 1/2 le soir") give the mean dose per intake, so that
  dose x intakes is the daily total; a note lists the doses.
- Ranges ("1 à 2 cp", "2 à 3 fois par jour", "toutes les 4 à 6 h", "pendant 5 à 7 jours") keep the
  bound of highest exposure (2 cp, 3 times, every 4 h, 7 days) with a note: safety rules need the
  maximum the prescription allows.
- "dans chaque narine/œil/oreille" doubles the dose per intake (both sides are given), with a note.
- As-needed ("si besoin", "si douleur", "en cas de ...", "SB", "à la demande"): ``as_needed=True``.
  A stated schedule is kept in ``intakes_per_day`` ("toutes les 6 h si douleur" -> 4, "au coucher
  si insomnie" -> 1); without one it stays None. A maximum ("max 3/j", "sans dépasser 4 cp par
  jour", "max 3 g/j", "4 h minimum entre les prises") becomes ``max_intakes_per_day`` in intakes:
  an amount is divided by the dose per intake (converting g/mg/µg), "max 3 fois/j" counts intakes,
  and so does a unitless "max 3/j" when the dose is one unit or unstated; with another dose ("1 à
  2 cp, max 6/j": 6 cp or 6 intakes?) it is left out with a note, as is a maximum the dose cannot
  convert (max in g, dose in cp). A maximum without any regular schedule ("1 cp 3 fois par jour
  maximum") makes the line as-needed.
- A schedule without a dose ("matin et soir", "si douleur, max 3/j") is parsed with
  ``dose_per_intake=None`` and the note "no dose stated"; a dose without any schedule ("1 cp") is not.
- ``mg_per_day`` is set only when the dose is a mass: dose x intakes per day, or dose x maximum
  intakes when a maximum is given (the maximum exposure). :func:`daily_mass_mg` does the same
  for unit doses with the product's strength.
- Contradictions ("1 cp 3 fois par jour matin et soir", two durations) are not parsed.
- Sequential or conditional regimens ("... puis 1/2 cp/j", "selon INR", "à adapter", "si TA > 14")
  are not parsed: their values depend on information the text does not hold. "puis arrêt" and
  "puis réévaluation" are accepted: nothing is taken after them that the text would need to say.
- Words known to carry no dose (articles, "prendre", routes, form qualifiers such as "LP" or
  "gastro-résistant", symptoms of an as-needed line such as "(insomnie)") are skipped; any other
  word makes the posology unparsed, with the words in ``note``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from iatro.model.report import Posology

__all__ = ["MOMENTS", "UNITS", "daily_mass_mg", "parse_posology"]

UNITS: Final[tuple[str, ...]] = (
    "comprimé", "gélule", "sachet", "ampoule", "injection", "goutte", "bouffée", "suppositoire", "patch",
    "capsule", "cuillère à soupe", "cuillère à café", "dose", "application", "mg", "g", "µg", "ml", "ui",
)  # fmt: skip
MOMENTS: Final[tuple[str, ...]] = ("matin", "midi", "soir", "coucher")

_INTAKES: Final = "intakes"  # the unit of a maximum written as a count of intakes ("max 3 fois/j")
_MG_PER_UNIT: Final[dict[str, float]] = {"mg": 1.0, "g": 1000.0, "µg": 0.001}

# Written forms (letters only, accents removed) of each normalised unit. Spoons are matched by
# pattern instead, their abbreviations being split by dots and spaces ("c. à s.").
_UNIT_SPELLINGS: Final[tuple[tuple[str, str], ...]] = (
    ("comprimé", "cp cps cpr cprs cpe cpes comp comps compr comprime comprimes"),
    ("gélule", "gel gels gelu gelule gelules"),
    ("sachet", "sach sachet sachets sct scts"),
    ("ampoule", "amp amps ampoule ampoules"),
    ("injection", "inj injs injection injections piqure piqures stylo stylos seringue seringues"),
    ("goutte", "gt gts gte gtes gtt gtts gtte gttes goutte gouttes"),
    ("bouffée", "bouf boufs bouff bouffs bouffee bouffees inhalation inhalations puff puffs pulv "
     "pulverisation pulverisations"),
    ("suppositoire", "sup supp suppo suppos suppositoire suppositoires"),
    ("patch", "patch patchs patches timbre timbres"),
    ("capsule", "caps capsule capsules"),
    ("dose", "dose doses mesurette mesurettes"),
    ("application", "application applications appl app"),
    ("mg", "mg milligramme milligrammes"),
    ("g", "g gr gramme grammes"),
    ("µg", "ug mcg microgramme microgrammes"),
    ("ml", "ml millilitre millilitres"),
    ("ui", "ui u unite unites"),
)  # fmt: skip
_UNIT_FORMS: Final[dict[str, str]] = {form: unit for unit, forms in _UNIT_SPELLINGS for form in forms.split()}

_NUMBER_WORDS: Final[dict[str, float]] = {
    "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7, "huit": 8,
    "neuf": 9, "dix": 10, "onze": 11, "douze": 12, "quinze": 15, "vingt": 20, "trente": 30,
}  # fmt: skip

# Words that carry no dosing information: articles, administration verbs, routes, form qualifiers.
_ARTICLES = "le la les l de du des d a au aux et en avec tous toutes tts ttes tt chaque posologie poso"
_VERBS = (
    "prendre prends donner administrer faire inhaler appliquer instiller injecter mettre poser avaler boire "
    "changer coller sucer croquer macher diluer dissoudre utiliser fondre laisser"
)
_ROUTES = (
    "per os po voie orale oral sc im iv sl sublingual sublinguale cutane cutanee intramusculaire "
    "intraveineuse locale local nasale rectale repas eau verre ar traitement buvable buvables buv lp"
)
# Form qualifiers reach the parser when a line's form is written after its strength ("gélule
# gastro-résistante, 1/j"); they do not change what is taken.
_FORMS = (
    "gastro resistant resistante resistants resistantes pellicule pelliculee pellicules pelliculees secable "
    "secables effervescent effervescents orodispersible orodispersibles dispersible dispersibles molle "
    "molles lm collyre"
)
_FILLER_WORDS: Final[frozenset[str]] = frozenset(f"{_ARTICLES} {_VERBS} {_ROUTES} {_FORMS}".split())

# ---------------------------------------------------------------------------------------- patterns

_W = r"(?:" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")(?![a-z])"
_DIG = r"\d++(?:\.\d++)?(?:/\d++)?"  # possessive: a long digit run is not re-split on failure
_HALF = r"(?:demie?(?![a-z])|1/2(?![\d/]))"
# One number: "2", "0.5", "3/4", "deux", "un demi", "1 et demi", "1 1/2", "trois quarts", "demi".
_N = rf"(?:(?:{_DIG}|{_W})(?:\s*quarts?(?![a-z])|\s+(?:et\s+)?{_HALF})?|demie?(?![a-z]))"
# A number or a range: "1 à 2", "1 ou 2", "4-6".
# Cheap test that a number can start here: it spares the number patterns at most word positions.
_NSTART = r"(?=\d|(?:" + "|".join(_NUMBER_WORDS) + r"|demie?)(?![a-z]))"
_NR = rf"{_N}(?:\s*(?:a(?![a-z])|ou(?![a-z])|-)\s*{_N})?"
_PERIOD = r"(?:\d+\s*)?(?:jours?|jrs?|journee|j|semaines?|sem|mois|heures?|hrs?|h)(?![a-z])"
_SPOON = (
    r"(?:cuill?(?:eree|ere)s?\.?\s*|c\.?\s*)(?:a\s*)?s(?:oupe)?\.?"
    r"|(?:cuill?(?:eree|ere)s?\.?\s*|c\.?\s*)a\s*c(?:afe)?\.?"
    r"|cuill?(?:eree|ere)s?\s+mesures?"
)
_UNIT = rf"(?:(?:{_SPOON}|" + "|".join(sorted(_UNIT_FORMS, key=len, reverse=True)) + r")(?![a-z])\.?)"
_MN = r"\d{1,2}(?:\.\d+)?(?:/\d)?"
_COND_WORDS = (
    "besoin|necessaire|douleurs?|douloureu(?:x|se)|mal|maux|tete|ventre|dos|fievre|temperature|crises?"
    "|nausees?|vomissements?|constipation|diarrhees?|insomnie|anxiete|angoisses?|agitation|toux|dyspnee"
    "|essoufflement|genes?|respiratoires?|sifflements?|prurit|demangeaisons?|spasmes?|vertiges?"
    "|migraines?|cephalees?|reflux|brulures?|estomac|angor|angineuse|poitrine|thoraciques?|abdominales?"
    "|intenses?|importantes?|persistantes?|fortes?|aigues?|nocturnes?|troubles?|sommeil|symptomes?"
    "|allergie|allergiques?|eruption|rhinite|crampes?|palpitations?|hypoglycemie|saignements?"
    "|nervosite|selles|dures|absence|gonflement|hemorroides?|oppression|irritation|secheresse"
    "|oculaire|yeux|gorge|endormissement|reveil|reveils|coliques?|ballonnements?|acidite|aphtes?|oedemes?"
)
_COND = rf"(?:{_COND_WORDS})(?![a-z])"
_COND_WORD: Final[re.Pattern[str]] = re.compile(_COND_WORDS)
_CONN = r"(?:de|d|du|des|la|le|les|l|ou|et|en|pas)(?![a-z])"
_WEEKDAYS: Final[tuple[str, ...]] = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_WEEKDAY = "|".join(_WEEKDAYS)
_TIME = r"\d{1,2}\s*h(?:\d{2})?(?![a-z\d])"
_TIME_SEP = r"\s*(?:,|et|-|/|\+)\s*(?:a\s+)?"

_ENTRIES: Final[tuple[tuple[str, str], ...]] = (
    ("matrix", rf"(?P<mv>{_MN}(?:\s*[-+]\s*{_MN}){{2,3}})(?![\d/.])(?:\s*(?P<mu>{_UNIT}))?"),
    (
        "moment_p",
        r"soir\s+(?:au|avant\s+(?:le|de\s+se))\s+coucher"
        r"|(?:(?:juste\s+)?avant\s+(?:le\s+|de\s+se\s+|d\s+aller\s+se\s+)|au\s+moment\s+du\s+)coucher"
        r"|(?:des\s+le|au|apres\s+le)\s+lever"
        r"|(?:(?:au|pendant\s+le|avant\s+le|apres\s+le|au\s+cours\s+du|lors\s+du|avec\s+le)\s+)?repas\s+du\s+"
        r"(?:matin|midi|soir)(?![a-z])"
        r"|(?:(?:a|avant|apres|pendant|au\s+cours\s+de|lors\s+de|au\s+milieu\s+de|au\s+debut\s+de)\s+)?"
        r"chaque\s+repas"
        r"|(?:aux|des|au\s+cours\s+des|pendant\s+les|avant\s+les|apres\s+les|lors\s+des|a\s+chacun\s+des"
        r"|au\s+milieu\s+des|au\s+debut\s+des)\s+(?:3|trois)\s+(?:principaux\s+)?repas"
        r"|(?:(?:au|avant\s+le|apres\s+le|pendant\s+le|au\s+cours\s+du|lors\s+du|au\s+moment\s+du"
        r"|a\s+la\s+fin\s+du|avec\s+le|des\s+le|au\s+milieu\s+du|au\s+debut\s+du)\s+)?"
        r"(?:petit\s*dejeuner|pt\s*dej|p\s*dej|pdj|dejeuner|diner|souper)(?![a-z])",
    ),
    (
        "filler_p",
        r"a\s+jeun|(?:le\s+)?ventre\s+vide"
        r"|\d+\s*(?:min(?:utes?)?|mn)\s+(?:avant|apres)(?:\s+(?:le|les|la|l))?(?![a-z])"
        r"|(?:au\s+cours|au\s+milieu|au\s+moment|au\s+debut|a\s+la\s+fin|en\s+fin|en\s+debut|pendant"
        r"|avant|apres|en\s+dehors|a\s+distance|loin|lors|avec|hors|durant|au)\s+"
        r"(?:(?:du|des|de|d|les|le|la|l)\s+)?(?:un\s+)?repas(?![a-z])"
        r"|(?:avec|dans)\s+(?:un\s+|une\s+|de\s+l\s+|du\s+|1/2\s+|un\s+demi\s+)?"
        r"(?:grand\s+|demi\s+|petit\s+|peu\s+d\s+)?(?:verre\s+d\s+)?eau(?![a-z])"
        r"|(?:a\s+)?(?:sucer|croquer|avaler)\s+ou\s+(?:a\s+)?(?:sucer|croquer|avaler)(?![a-z])"
        r"|(?:solution|suspension)\s+buvable|sans\s+sucre"
        r"|(?:a\s+)?(?:avaler|croquer|sucer|macher|diluer|dissoudre|laisser\s+fondre)"
        r"(?:\s+sans\s+(?:croquer|macher|ecraser))?(?![a-z])"
        r"|sous\s+la\s+langue"
        r"|(?:par\s+)?voie\s+(?:orale|buccale|sublinguale|nasale|rectale|cutanee|locale|inhalee|sc|im|iv"
        r"|sous\s+cutanee|intramusculaire|intraveineuse|ophtalmique|auriculaire|vaginale|transdermique)"
        r"(?![a-z])"
        r"|per\s+os|par\s+inhalation"
        r"|en\s+(?:sous\s+cutanee?|sc|s\s+c|intramusculaire|im|i\s+m|intraveineuse|iv|inhalation"
        r"|application\s+(?:locale|cutanee)|instillation)(?![a-z])"
        r"|sous\s+cutanee?(?![a-z])"
        r"|dans\s+(?:l|la|le)\s+(?:oeil|narine|oreille|bouche)(?:\s+(?:droite?|gauche))?(?![a-z])"
        r"|sur\s+(?:la|les|le|l)\s+(?:zones?|lesions?|plaques?|peau|plaies?|visage|corps)"
        r"(?:\s+(?:atteintes?|a\s+traiter|concernees?|seches?))?(?![a-z])"
        r"|au\s+long\s+cours|en\s+continu|a\s+vie|traitement\s+de\s+fond|jusqu\s+a\s+nouvel\s+ordre"
        rf"|(?:a\s+)?(?:poursuivre|continuer)(?![a-z])"
        rf"|(?:a\s+)?renouvel(?:er|able)(?:\s+{_NR}\s*(?:fois|mois))?(?![a-z])"
        rf"|ar\s+{_NR}\s*(?:fois|mois)(?![a-z])"
        r"|(?:a\s+)?heure\s+(?:fixe|reguliere)|a\s+la\s+meme\s+heure|de\s+preference"
        r"|puis\s+(?:arret(?:er)?|stop(?:per)?|a\s+reevaluer|reevaluer|reevaluation)(?![a-z])"
        r"|(?:bien\s+)?agiter(?:\s+avant\s+(?:emploi|usage))?"
        r"|ne\s+pas\s+(?:ecraser|croquer|macher|ouvrir)|sans\s+(?:croquer|macher|ecraser)"
        r"|(?:par|/)\s*prise(?![a-z])"
        r"|(?:(?:rester\s+)?(?:en\s+)?position|rester)\s+(?:debout|assise?)"
        r"(?:\s+(?:pendant\s+)?\d+\s*(?:min(?:utes)?|mn))?(?![a-z])"
        r"|ne\s+pas\s+s\s+allonger(?:\s+(?:dans\s+les|pendant)\s+\d+\s*(?:min(?:utes)?|mn))?(?![a-z])"
        r"|(?:le|au)\s+meme\s+jour(?:\s+(?:chaque|de\s+la)\s+semaine)?(?![a-z])",
    ),
    (
        "asneeded",
        rf"(?:si|en\s+cas\s+(?:de|d)|lors\s+(?:de|des|du|d\s+une?))\s+(?:{_CONN}\s+)*{_COND}"
        rf"(?:\s+(?:{_CONN}\s+)*{_COND})*"
        r"|si\s+bes(?:oin)?(?![a-z])|au\s+besoin|si\s+nec(?:essaire)?(?![a-z])|sb(?![a-z])|prn(?![a-z])"
        r"|a\s+la\s+demande|selon\s+(?:les\s+)?besoins?(?![a-z])",
    ),
    (
        "maxint",
        r"(?:(?:en\s+)?respectant\s+(?:un\s+(?:intervalle|delai)\s+(?:minimum\s+|minimal\s+)?(?:de\s+)?"
        r"|au\s+moins\s+)?"
        r"|espacer\s+(?:les\s+prises\s+)?(?:de\s+)?(?:au\s+moins\s+)?"
        r"|(?:intervalle|delai)\s+(?:minimum\s+|minimal\s+)?(?:de\s+)?(?:au\s+moins\s+)?"
        r"|au\s+moins\s+)"
        rf"(?P<xh>{_NR})\s*(?:h|heures?)(?![a-z])(?:\s+(?:minimum|mini|au\s+moins))?"
        r"(?:\s+(?:entre\s+(?:les|2|deux)\s+prises|d\s+intervalle))?"
        rf"|{_NSTART}(?P<xh2>{_NR})\s*(?:h|heures?)\s+(?:minimum\s+|au\s+moins\s+)?"
        r"(?:entre\s+(?:les|2|deux)\s+prises|d\s+intervalle)",
    ),
    (
        "max",
        r"(?:dose\s+max(?:imale|imum|i)?\.?(?:\s+(?P<xday>journaliere|quotidienne|par\s+jour|par\s+24\s*h))?"
        r"|(?:au\s+)?max(?:imum|imal|i)?\.?"
        r"|sans\s+(?:depasser|exceder)|ne\s+(?:pas\s+)?(?:depasser|exceder)|pas\s+plus\s+d(?:e)?"
        r"|jusqu\s+a|limite\s+a)(?![a-z])(?:\s*:)?(?:\s+(?:de|d)(?![a-z]))?",
    ),
    ("interval", rf"(?:toutes?|ttes?|tts?|chaque)\s+(?:les\s+)?(?P<ih>{_NR})\s*(?:h|heures?|hrs?)(?![a-z])"),
    (
        "every",
        rf"(?:tous|toutes|ttes|tts|chaque)\s+(?:les\s+)?(?P<en>{_NR}\s*)?"
        r"(?P<ep>jours?|j|semaines?|sem|mois|ans?)(?![a-z])",
    ),
    (
        "jsur",
        rf"{_NSTART}(?P<jn>{_N})\s*(?P<jw>j|jours?|soirs?|matins?)\s*(?:sur|/)\s*(?P<jm>{_N})(?:\s*j(?:ours)?)?(?![a-z\d/])",
    ),
    (
        "adv",
        r"(?P<av>quotidien(?:ne)?s?(?:ment)?|journalier(?:e)?s?|hebdomadaire(?:s|ment)?"
        r"|mensuel(?:le)?s?(?:ment)?)(?![a-z])",
    ),
    (
        "freq",
        rf"(?:x\s*)?{_NSTART}(?P<fn>{_NR})\s*(?P<fm>x|fois|f|prises?)?\s*(?:/|par|dans\s+la|chaque)\s*(?P<fp>{_PERIOD})",
    ),
    ("split", rf"en\s+(?P<sn>{_N})\s*(?:prises?|fois)(?![a-z])"),
    ("count", rf"{_NSTART}(?P<cn>{_NR})\s*(?:x|fois|prises?)(?![a-z])"),
    (
        "duration",
        r"(?:(?:pendant|pdt|durant|pour|sur|x|qsp|duree|traitement)\s*(?:de\s+|d\s+)?:?\s*"
        rf"(?P<dn>{_NR})\s*(?P<du>jours?|jrs?|j|semaines?|sem|s|mois|m|ans?|annees?|heures?|h)"
        rf"|{_NSTART}(?P<dn2>{_NR})\s*(?P<du2>jours?|jrs?|j|semaines?|sem|mois|ans?|annees?))(?![a-z])"
        r"(?P<dhalf>\s+et\s+demie?(?![a-z]))?",
    ),
    ("times", rf"a\s+{_TIME}(?:{_TIME_SEP}{_TIME})*|{_TIME}(?:{_TIME_SEP}{_TIME})+"),
    ("mult", r"dans\s+(?:chaque|les\s+(?:2|deux))\s+(?:narines?|yeux|oeils?|oreilles?)(?![a-z])"),
    (
        "strength",
        r"(?:de|a|dosee?s?\s+a)\s+\d+(?:\.\d+)?\s*(?:mg|g|ug|mcg|ui|ml)(?![a-z])"
        r"|\(\s*(?:soit\s+)?\d+(?:\.\d+)?\s*(?:mg|g|ug|mcg|ui|ml)\s*\)",
    ),
    ("soit", rf"soit\s+(?:{_NR}\s*(?:{_UNIT})?\s*)?(?:(?:/|par)\s*{_PERIOD})?"),
    # "trois quarts de comprimé": the "de" is kept only when a unit follows it.
    (
        "dose",
        rf"{_NSTART}(?P<da>{_NR})(?:\s*(?:de|d)\s+(?={_UNIT}))?\s*(?P<du3>{_UNIT})?(?P<dh>\s*(?:et\s+)?{_HALF})?",
    ),
    ("moment", r"(?P<mo>matin(?:s|ee)?|mat|midis?|soir(?:s|ee)?|coucher|nuits?|lever)(?![a-z])"),
    (
        "except",
        r"sauf\s+(?:le\s+|les\s+)?(?:week\s*ends?|we(?![a-z])"
        rf"|(?:{_WEEKDAY})s?(?:\s*(?:,|et)\s*(?:le\s+)?(?:{_WEEKDAY})s?)*)(?![a-z])",
    ),
    ("wdrange", rf"du\s+(?P<w1>{_WEEKDAY})\s+au\s+(?P<w2>{_WEEKDAY})(?![a-z])"),
    ("weekday", rf"(?P<wd>{_WEEKDAY})s?(?![a-z])"),
    ("per", rf"(?:/|par)\s*(?P<pp>{_PERIOD})"),
    ("sep", r"[,;:()\[\]+&./\-]"),
    ("word", r"[a-z]+"),
    ("other", r"\S"),
)
_LEXER: Final[re.Pattern[str]] = re.compile("|".join(f"(?P<{name}>{pat})" for name, pat in _ENTRIES))

_SPACES = re.compile(r"\s+")
_COMBINING = re.compile(r"[\u0300-\u036f]")  # the accents NFKD splits off French letters
_MATRIX_SPLIT = re.compile(r"\s*[-+]\s*")
_DECIMAL_COMMA = re.compile(r"(?<=\d),(?=\d)")
_THOUSANDS = re.compile(r"(?<=\d)[ .](?=\d{3}(?:[ .]\d{3})*(?!\d)\s*(?:ui|u|unites)(?![a-z]))")
_WORD_HYPHEN = re.compile(r"(?<=[a-z])-|-(?=[a-z])")
_RANGE_SPLIT = re.compile(r"\s*(?:\ba\b|\bou\b|-)\s*")
_HALF_FORM = re.compile(r"(.+?)\s+(et\s+)?(demie?|1/2)")
_QUART_FORM = re.compile(r"(.+?)\s*quarts?")
_LETTERS = re.compile(r"[^a-z]")
_DIGITS = re.compile(r"\d+")
_PERIOD_FORM = re.compile(r"(\d+)?\s*([a-z]+)")
_REPAS_DU = re.compile(r"repas\s+du\s+([a-z]+)")
_BREAKFAST = re.compile(r"\bp(?:etit|t)?\s*d(?:ej|j)")

_SPECIAL_CHARS: Final[dict[int, str]] = str.maketrans(
    {"½": " 1/2 ", "¼": " 1/4 ", "¾": " 3/4 ", "µ": "u", "μ": "u", "×": "x", "œ": "oe", "æ": "ae",
     "’": " ", "'": " ", "`": " ", "‘": " ", "–": "-", "—": "-", "\u00a0": " ", "\u202f": " "}
)  # fmt: skip


class _Tok(NamedTuple):
    kind: str
    hi: float = 0.0  # amount, count, hours... (upper bound of a range)
    lo: float = 0.0  # lower bound of a range (equals ``hi`` when no range)
    period: float = 0.0  # days
    s: str = ""  # unit, moment, weekday, flags
    text: str = ""


class _Fail(Exception):
    """Raised inside the interpreter to return an unparsed posology with a note."""


@dataclass(slots=True)
class _Seg:
    """One dose and the moments it is taken at ("1 cp le matin" in "1 cp le matin et 1/2 le soir")."""

    lo: float | None
    hi: float | None
    unit: str | None
    moments: list[str] = field(default_factory=list)
    times: int = 0

    @property
    def slots(self) -> int:
        return len(self.moments) + self.times


# ---------------------------------------------------------------------------------------- helpers


def _normalise(text: str) -> str:
    folded = text.lower().translate(_SPECIAL_CHARS)
    if not folded.isascii():
        folded = _COMBINING.sub("", unicodedata.normalize("NFKD", folded))
    folded = _DECIMAL_COMMA.sub(".", folded)
    folded = _WORD_HYPHEN.sub(" ", folded)
    folded = _SPACES.sub(" ", folded).strip()
    return _THOUSANDS.sub("", folded)


def _single(text: str) -> float | None:
    text = text.strip()
    if text in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[text])
    if text in ("demi", "demie"):
        return 0.5
    half = _HALF_FORM.fullmatch(text)
    if half:
        base = _single(half.group(1))
        if base is None:
            return None
        if half.group(2) or half.group(3) == "1/2":
            return base + 0.5
        # "un demi", "1 demi": the number counts halves, it is not added to them.
        return 0.5 if base == 1 else None
    quart = _QUART_FORM.fullmatch(text)
    if quart:
        base = _single(quart.group(1))
        return None if base is None else base * 0.25
    if "/" in text:
        num, _, den = text.partition("/")
        try:
            denominator = float(den)
            return float(num) / denominator if denominator else None
        except ValueError:
            return None
    try:
        return float(text)
    except ValueError:
        return None


def _amount(text: str) -> tuple[float, float]:
    """(low, high) of a number or a range; raises _Fail when it is not a number."""
    text = text.strip()
    values: list[float] = []
    parts = [text]
    single = _single(text)
    if single is None:
        parts = _RANGE_SPLIT.split(text)
    else:
        values = [single]
    if not values:
        for part in parts:
            value = _single(part)
            if value is None:
                raise _Fail(f"number not understood: {_short(text)}")
            values.append(value)
    if not all(math.isfinite(v) for v in values):
        raise _Fail(f"number out of range: {_short(text)}")
    return min(values), max(values)


def _period_days(text: str) -> float:
    """'j' -> 1, '2 semaines' -> 14, '8h' -> 1/3, 'mois' -> 30."""
    match = _PERIOD_FORM.fullmatch(text.strip().replace(" ", ""))
    if not match:
        raise _Fail(f"period not understood: {_short(text)}")
    count = float(match.group(1)) if match.group(1) else 1.0
    word = match.group(2)
    if word.startswith("j"):
        return count
    if word.startswith("s"):
        return 7 * count
    if word.startswith("m"):
        return 30 * count
    if word.startswith("a"):
        return 365 * count
    return count / 24  # hours


def _unit_name(raw: str) -> str:
    key = _LETTERS.sub("", raw)
    if key.startswith("c") and "mesure" in key:
        return "dose"
    if key in _UNIT_FORMS:
        return _UNIT_FORMS[key]
    if key.endswith(("s", "soupe")) and key.startswith("c"):
        return "cuillère à soupe"
    if key.startswith("c") and key.endswith(("c", "cafe")):
        return "cuillère à café"
    raise _Fail(f"unit not understood: {_short(raw)}")


def _moment_of(text: str) -> tuple[str, ...]:
    if "coucher" in text or text.startswith("nuit"):
        return ("coucher",)
    repas_du = _REPAS_DU.search(text)
    if repas_du:
        word = repas_du.group(1)
        return ("matin",) if word.startswith("mat") else (word,)
    if "repas" in text:
        return ("matin", "midi", "soir")
    if "lever" in text or text.startswith("mat") or _BREAKFAST.search(text):
        return ("matin",)
    if "dejeuner" in text or text.startswith("midi"):
        return ("midi",)
    return ("soir",)  # soir, soirs, soiree, diner, souper


def _lex(norm: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    for match in _LEXER.finditer(norm):
        kind = match.lastgroup or "other"
        text = match.group(kind)
        if kind == "word":
            # "1 cp le soir si besoin (insomnie)": a symptom is harmless once the line is as-needed.
            kind = "filler" if text in _FILLER_WORDS else "cond" if _COND_WORD.fullmatch(text) else "unknown"
            tokens.append(_Tok(kind, text=text))
        elif kind == "except":
            # "sauf le week-end", "sauf le dimanche": the other days of the week.
            excluded = {"samedi", "dimanche"} if "w" in text else {d for d in _WEEKDAYS if d in text}
            tokens.extend(_Tok("weekday", s=day, text=text) for day in _WEEKDAYS if day not in excluded)
        elif kind == "wdrange":
            first, last = _WEEKDAYS.index(match.group("w1")), _WEEKDAYS.index(match.group("w2"))
            if last < first:
                tokens.append(_Tok("unknown", text=text))
            tokens.extend(_Tok("weekday", s=day, text=text) for day in _WEEKDAYS[first : last + 1])
        elif kind in ("filler_p", "sep", "strength", "soit"):
            tokens.append(_Tok("filler", s=kind, text=text))
        elif kind == "other":
            tokens.append(_Tok("unknown", text=text))
        else:
            tokens.append(_tok_of(kind, match, text))
            if kind == "jsur" and match.group("jw")[0] in "sm":  # "1 soir sur 2"
                tokens.append(_Tok("moment", s=_moment_of(match.group("jw"))[0], text=text))
    return tokens


def _tok_of(kind: str, match: re.Match[str], text: str) -> _Tok:
    tok = _read_tok(kind, match, text)
    # Zero periods, counts or doses ("toutes les 0 h", "0 fois par jour", "0 cp") mean nothing.
    if tok.period < 0 or (tok.kind in _NEEDS_PERIOD and tok.period <= 0):
        raise _Fail(f"zero period: {_short(text)}")
    if tok.kind in _NEEDS_AMOUNT and tok.lo <= 0:
        raise _Fail(f"zero amount: {_short(text)}")
    return tok


_NEEDS_PERIOD: Final = frozenset({"freq", "interval", "every", "per", "maxint"})
_NEEDS_AMOUNT: Final = frozenset({"dose", "freq", "count", "split", "duration"})


def _read_tok(kind: str, match: re.Match[str], text: str) -> _Tok:
    group = match.group
    if kind == "matrix":
        unit = group("mu")
        return _Tok("matrix", s=_unit_name(unit) if unit else "", text=group("mv"))
    if kind == "dose":
        lo, hi = _amount(group("da"))
        if group("dh"):
            lo, hi = lo + 0.5, hi + 0.5
        unit = group("du3")
        return _Tok("dose", hi, lo, s=_unit_name(unit) if unit else "", text=text)
    if kind == "freq":
        lo, hi = _amount(group("fn"))
        return _Tok("freq", hi, lo, _period_days(group("fp")), "marked" if group("fm") else "", text)
    if kind == "count":
        lo, hi = _amount(group("cn"))
        return _Tok("count", hi, lo, text=text)
    if kind == "split":
        lo, hi = _amount(group("sn"))
        return _Tok("split", hi, lo, text=text)
    if kind == "interval":
        lo, hi = _amount(group("ih"))
        # Shortest interval = most intakes: the exposure bound.
        return _Tok("interval", 1.0, 1.0, lo / 24, "range" if lo != hi else "", text)
    if kind == "every":
        lo, hi = _amount(group("en")) if group("en") else (1.0, 1.0)
        return _Tok("every", period=lo * _period_days(group("ep")), s="range" if lo != hi else "", text=text)
    if kind == "jsur":
        days = _amount(group("jn"))[1]
        over = _amount(group("jm"))[1]
        if days == 1:
            return _Tok("every", period=over, text=text)
        return _Tok("freq", days, days, over, "marked", text)
    if kind == "adv":
        word = group("av")
        period = 1.0 if word.startswith(("q", "j")) else 7.0 if word.startswith("h") else 30.0
        return _Tok("every", period=period, text=text)
    if kind == "duration":
        number = group("dn") or group("dn2")
        unit = group("du") or group("du2")
        lo, hi = _amount(number)
        if group("dhalf"):  # "1 mois et demi"
            lo, hi = lo + 0.5, hi + 0.5
        return _Tok("duration", hi * _period_days(unit), lo * _period_days(unit), text=text)
    if kind == "times":
        return _Tok("times", float(len(_DIGITS.findall(re.sub(r"h\d{2}", "h", text)))), text=text)
    if kind in ("moment", "moment_p"):
        return _Tok("moment", s=" ".join(_moment_of(text)), text=text)
    if kind == "weekday":
        return _Tok("weekday", s=group("wd"), text=text)
    if kind == "per":
        return _Tok("per", period=_period_days(group("pp")), text=text)
    if kind == "maxint":
        lo, _hi = _amount(group("xh") or group("xh2"))
        return _Tok("maxint", period=lo / 24, text=text)
    if kind == "max":
        return _Tok("max", s="day" if group("xday") else "", text=text)
    if kind == "mult":
        return _Tok("mult", 2.0, text=text)
    return _Tok(kind, text=text)  # asneeded


def _fmt(value: float) -> str:
    return f"{value:g}"


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


# ---------------------------------------------------------------------------------------- interpreter


def _bind_maxima(tokens: list[_Tok], has_dose: bool, as_needed: bool) -> list[_Tok]:
    """Turn "max" and what it bounds ("max 3/j", "3 g/j max") into one "maxspec" token.

    A maxspec keeps the amount in ``hi`` and the period; ``s`` is the unit of the amount, _INTAKES for
    a count of intakes ("3 fois", "3 prises") or "" for a bare number ("max 3/j").
    """
    out: list[_Tok] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind != "max":
            out.append(tok)
            i += 1
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        after = tokens[i + 2] if i + 2 < len(tokens) else None
        if nxt is not None and nxt.kind == "freq":
            out.append(_Tok("maxspec", nxt.hi, nxt.lo, nxt.period, _INTAKES if nxt.s else "", nxt.text))
            i += 2
        elif nxt is not None and nxt.kind == "dose" and after is not None and after.kind == "per":
            out.append(_Tok("maxspec", nxt.hi, nxt.lo, after.period, nxt.s, nxt.text))
            i += 3
        elif nxt is not None and nxt.kind == "dose" and tok.s == "day":
            out.append(_Tok("maxspec", nxt.hi, nxt.lo, 1.0, nxt.s, nxt.text))
            i += 2
        elif nxt is not None and nxt.kind == "interval":
            out.append(_Tok("maxspec", 1.0, 1.0, nxt.period, _INTAKES, nxt.text))
            i += 2
        elif out and out[-1].kind == "freq":  # "3 fois par jour maximum"
            prev = out.pop()
            out.append(_Tok("maxspec", prev.hi, prev.lo, prev.period, _INTAKES if prev.s else "", prev.text))
            i += 1
        elif len(out) >= 2 and out[-1].kind == "per" and out[-2].kind == "dose":  # "3 g/j max"
            per = out.pop()
            dose = out.pop()
            out.append(_Tok("maxspec", dose.hi, dose.lo, per.period, dose.s, dose.text))
            i += 1
        else:
            raise _Fail(f"maximum not understood: {_short(tok.text)}")
    if not has_dose and not as_needed:
        # "1/j", "2 par jour": a count with no dose is an amount of the product's unit.
        plain = [t for t in out if t.kind == "freq" and not t.s]
        if len(plain) == 1:
            idx = out.index(plain[0])
            t = plain[0]
            out[idx : idx + 1] = [_Tok("dose", t.hi, t.lo, text=t.text), _Tok("per", period=t.period)]
    return out


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@dataclass(slots=True)
class _Reading:
    """What the tokens said, before the arithmetic."""

    segs: list[_Seg] = field(default_factory=list)
    matrix_moments: tuple[str, ...] | None = None
    extra_moments: list[str] = field(default_factory=list)
    freqs: list[_Tok] = field(default_factory=list)
    counts: list[_Tok] = field(default_factory=list)
    intervals: list[_Tok] = field(default_factory=list)
    everys: list[_Tok] = field(default_factory=list)
    pers: list[float] = field(default_factory=list)
    weekdays: list[str] = field(default_factory=list)
    splits: list[float] = field(default_factory=list)
    maxima: list[_Tok] = field(default_factory=list)
    max_intervals: list[float] = field(default_factory=list)
    durations: list[_Tok] = field(default_factory=list)
    multiplier: float = 1.0
    as_needed: bool = False
    notes: list[str] = field(default_factory=list)


def _read(tokens: list[_Tok], as_needed: bool) -> _Reading:
    reading = _Reading(as_needed=as_needed)
    segs = reading.segs
    style = ""  # "dose" when doses come first ("1 cp le soir"), "moment" otherwise ("le soir : 1 cp")
    pending: list[str] = []
    pending_times = 0
    for tok in tokens:
        kind = tok.kind
        if kind == "matrix":
            if segs or reading.matrix_moments is not None:
                raise _Fail("a matrix and another dose")
            parts = _MATRIX_SPLIT.split(tok.text)
            labels = MOMENTS[:3] if len(parts) == 3 else MOMENTS
            values = [_amount(part)[1] for part in parts]
            for value, label in zip(values, labels, strict=True):
                if value > 0:
                    segs.append(_Seg(value, value, tok.s or None, [label]))
            if not segs:
                raise _Fail("matrix with no intake")
            reading.matrix_moments = tuple(s.moments[0] for s in segs)
            style = "dose"
        elif kind == "dose":
            seg = _Seg(tok.lo, tok.hi, tok.s or None)
            style = style or "dose"
            if reading.matrix_moments is not None:
                raise _Fail("a matrix and another dose")
            if style == "moment":
                _add_moments(seg, pending)
                seg.times += pending_times
                pending, pending_times = [], 0
            segs.append(seg)
        elif kind in ("moment", "times"):
            new_moments = tok.s.split() if kind == "moment" else []
            new_times = int(tok.hi) if kind == "times" else 0
            if reading.matrix_moments is not None:
                reading.extra_moments.extend(new_moments)
                if new_times:
                    raise _Fail("clock times and a matrix")
                continue
            style = style or "moment"
            if style == "moment" or not segs:
                pending.extend(new_moments)
                pending_times += new_times
            else:
                _add_moments(segs[-1], new_moments)
                segs[-1].times += new_times
        elif kind == "freq":
            reading.freqs.append(tok)
        elif kind == "count":
            reading.counts.append(tok)
        elif kind == "interval":
            reading.intervals.append(tok)
        elif kind == "every":
            reading.everys.append(tok)
        elif kind == "per":
            reading.pers.append(tok.period)
        elif kind == "weekday":
            if tok.s not in reading.weekdays:
                reading.weekdays.append(tok.s)
        elif kind == "split":
            reading.splits.append(tok.hi)
        elif kind == "maxspec":
            reading.maxima.append(tok)
        elif kind == "maxint":
            reading.max_intervals.append(tok.period)
        elif kind == "duration":
            reading.durations.append(tok)
        elif kind == "mult":
            reading.multiplier *= tok.hi
        elif kind == "asneeded":
            reading.as_needed = True
    if pending or pending_times:
        if not segs:
            segs.append(_Seg(None, None, None))
        if len(segs) == 1 and segs[0].slots == 0:
            _add_moments(segs[0], pending)
            segs[0].times += pending_times
        else:
            raise _Fail("moments that belong to no dose")
    every_moment = [m for seg in segs for m in seg.moments]
    if len(every_moment) != len(set(every_moment)):
        raise _Fail("a moment has two doses")
    return reading


def _add_moments(seg: _Seg, moments: list[str]) -> None:
    # "le matin à jeun, avant le petit déjeuner" names the morning twice: it is still one intake.
    seg.moments.extend(m for m in dict.fromkeys(moments) if m not in seg.moments)


def _frequency(r: _Reading, slots: int) -> tuple[float | None, float | None, float | None]:
    """(intakes per period, period in days, the period an amount-per-period refers to)."""
    sources: list[tuple[float, float | None]] = []
    for f in r.freqs:
        if f.lo != f.hi:
            r.notes.append(f"frequency range {_fmt(f.lo)}-{_fmt(f.hi)}; the upper bound is kept")
        sources.append((f.period, f.hi))
    for iv in r.intervals:
        if iv.s == "range":
            r.notes.append("interval range; the shortest interval is kept")
        sources.append((iv.period, 1.0))
    for ev in r.everys:
        if ev.s == "range":
            r.notes.append("interval range; the shortest interval is kept")
        sources.append((ev.period, None))
    if r.weekdays:
        sources.append((7.0, float(len(r.weekdays))))
    per_period: float | None = None
    if len(set(r.pers)) > 1:
        raise _Fail("conflicting periods")
    if r.pers:
        per_period = r.pers[0]
        # "1 cp par jour, 5 jours sur 7": "par jour" is the amount of a dosing day, not the period.
        if not (_close(per_period, 1.0) and sources):
            sources.append((per_period, None))
    if len(r.counts) > 1 or len(r.splits) > 1:
        raise _Fail("conflicting counts")
    period: float | None = None
    count: float | None = None
    for p, c in sources:
        if period is None:
            period = p
        elif not _close(period, p):
            raise _Fail("conflicting frequencies")
        if c is not None:
            if count is None:
                count = c
            elif not _close(count, c):
                raise _Fail("conflicting frequencies")
    if r.counts:
        c = r.counts[0].hi
        if count is not None and not _close(count, c):
            raise _Fail("conflicting frequencies")
        count = c
    split = r.splits[0] if r.splits else None
    if period is None:
        if slots:
            period = 1.0
            if count is None:
                count = float(slots)
            elif not _close(count, slots):
                raise _Fail("the number of intakes contradicts the moments")
        elif count is not None or split is not None:
            raise _Fail("a number of intakes without a period")
    elif slots:
        if count is None:
            count = float(slots)
        elif r.weekdays:
            count = len(r.weekdays) * float(slots)
        elif _close(period, 1.0):
            if not _close(count, slots):
                raise _Fail("the number of intakes contradicts the moments")
        elif period < 1:
            if not _close(count / period, slots):
                raise _Fail("the interval contradicts the moments")
        elif slots != 1:
            raise _Fail("several moments with a multi-day frequency")
    elif count is None:
        count = split or 1.0
    if split is not None and count is not None and not _close(split, count):
        raise _Fail("the number of intakes contradicts the split")
    return count, period, per_period


def _dose(
    r: _Reading, count: float | None, period: float | None, per_period: float | None
) -> tuple[float | None, str | None]:
    segs = [s for s in r.segs if s.hi is not None]
    if not segs:
        return None, None
    units = {s.unit for s in segs if s.unit is not None}
    if len(units) > 1:
        raise _Fail("doses in different units")
    unit = units.pop() if units else None
    if any(s.lo != s.hi for s in segs):
        lows = "+".join(_fmt(s.lo or 0) for s in segs)
        r.notes.append(f"dose range (from {lows}); the upper bound is kept")
    if len(r.segs) > 1:
        if any(s.hi is None or s.slots == 0 for s in r.segs):
            raise _Fail("several doses without their moments")
        if per_period is not None and not _close(per_period, 1.0):
            raise _Fail("several doses with an amount per period")
        slots = sum(s.slots for s in segs)
        total = sum((s.hi or 0.0) * s.slots for s in segs)
        dose = total / slots
        if len({s.hi for s in segs}) > 1:
            doses = ", ".join(_fmt(s.hi or 0.0) for s in segs)
            r.notes.append(f"unequal doses ({doses}); dose_per_intake is their mean")
    else:
        dose = segs[0].hi or 0.0
        if per_period is not None:
            if period is not None and _close(per_period, period) and count:
                divisor = count
            else:
                divisor = float(segs[0].slots or (r.splits[0] if r.splits else 1.0))
            if divisor == 1 and dose > 1 and not segs[0].slots and not r.splits:
                r.notes.append("amount per period with no number of intakes: read as one intake")
            dose /= divisor
    if r.multiplier != 1:
        r.notes.append("dose given on both sides: counted twice")
        dose *= r.multiplier
    return dose, unit


def _max_intakes(r: _Reading, dose: float | None, unit: str | None) -> float | None:
    bounds: list[float] = []
    for mx in r.maxima:
        per_day = mx.hi / mx.period
        if mx.s == _INTAKES:
            bounds.append(per_day)
        elif not mx.s:
            if dose is not None and dose != 1:
                # "1 à 2 cp, max 6/j": 6 intakes or 6 cp? The text does not say.
                r.notes.append("a maximum without unit and a dose other than 1 is ambiguous: left out")
                continue
            bounds.append(per_day)
        elif dose is None or unit is None:
            r.notes.append(f"maximum in {mx.s} but no dose per intake in that unit: left out")
        elif mx.s == unit:
            bounds.append(per_day / dose)
        elif mx.s in _MG_PER_UNIT and unit in _MG_PER_UNIT:
            bounds.append(per_day * _MG_PER_UNIT[mx.s] / (dose * _MG_PER_UNIT[unit]))
        else:
            r.notes.append(f"maximum in {mx.s} cannot be compared with a dose in {unit}: left out")
    bounds.extend(1 / p for p in r.max_intervals)
    return min(bounds) if bounds else None


def _duration(r: _Reading) -> int | None:
    if not r.durations:
        return None
    highs = {d.hi for d in r.durations}
    if len(highs) > 1:
        raise _Fail("conflicting durations")
    d = r.durations[0]
    if d.lo != d.hi:
        r.notes.append("duration range; the upper bound is kept")
    if not _close(d.hi, round(d.hi)) or d.hi <= 0:
        raise _Fail(f"duration is not a whole number of days: {_short(d.text)}")
    return round(d.hi)


def _interpret(text: str, tokens: list[_Tok]) -> Posology:
    as_needed = any(t.kind == "asneeded" for t in tokens)
    unknown = [t.text for t in tokens if t.kind == "unknown" or (t.kind == "cond" and not as_needed)]
    if unknown:
        if "puis" in unknown:
            raise _Fail("sequential regimen ('puis') is not supported")
        shown = ", ".join(_short(u) for u in dict.fromkeys(unknown[:6]))
        raise _Fail("not understood: " + shown + (", …" if len(unknown) > 6 else ""))
    significant = [t for t in tokens if t.kind not in ("filler", "cond")]
    if not significant:
        raise _Fail("no dose and no frequency")
    has_dose = any(t.kind in ("dose", "matrix") for t in significant)
    r = _read(_bind_maxima(significant, has_dose, as_needed), as_needed)

    if (
        r.matrix_moments is not None
        and r.extra_moments
        and tuple(m for m in MOMENTS if m in r.extra_moments) != r.matrix_moments
    ):
        raise _Fail("the matrix contradicts the moments")

    slots = sum(s.slots for s in r.segs)
    count, period, per_period = _frequency(r, slots)
    intakes = count / period if count is not None and period is not None else None
    dose, unit = _dose(r, count, period, per_period)
    max_intakes = _max_intakes(r, dose, unit)
    duration = _duration(r)
    as_needed = r.as_needed or (intakes is None and bool(r.maxima or r.max_intervals))
    if intakes is None and not as_needed:
        raise _Fail("no frequency")
    if dose is None and intakes is None and max_intakes is None:
        raise _Fail("no dose and no frequency")
    if dose is None:
        r.notes.append("no dose stated")

    mg_per_day: float | None = None
    exposure = max_intakes if max_intakes is not None else intakes
    if dose is not None and unit in _MG_PER_UNIT and exposure is not None:
        mg_per_day = round(dose * _MG_PER_UNIT[unit] * exposure, 9)

    moments = tuple(m for m in MOMENTS if any(m in s.moments for s in r.segs))
    return Posology(
        text=text,
        parsed=True,
        dose_per_intake=None if dose is None else round(dose, 9),
        unit=unit,
        intakes_per_day=intakes,
        as_needed=as_needed,
        max_intakes_per_day=max_intakes,
        duration_days=duration,
        moments=moments,
        mg_per_day=mg_per_day,
        note="; ".join(dict.fromkeys(r.notes)) or None,
    )


# ---------------------------------------------------------------------------------------- public API


def parse_posology(text: str) -> Posology:
    """Parse a French posology; ``parsed=False`` (text kept, ``note`` says why) when not fully understood."""
    norm = _normalise(text)
    if not norm:
        return Posology(text=text, parsed=False, note="empty")
    try:
        return _interpret(text, _lex(norm))
    except _Fail as why:
        return Posology(text=text, parsed=False, note=str(why))


def daily_mass_mg(posology: Posology, strength_mg_per_unit: float | None) -> float | None:
    """mg per day: the dose per intake x intakes per day x mg in one unit of the dose.

    ``strength_mg_per_unit`` is the mg of substance in one unit of ``posology.unit`` (one comprimé,
    one ml...), or in one unit of the product's form when the posology names no unit ("1-0-1").
    When the dose is already a mass ("500 mg 2 fois par jour") the strength is not needed and
    ``posology.mg_per_day`` is returned.

    When a maximum is given (as-needed "si douleur, max 3/j") the maximum intakes are used, not the
    regular ones: dose-threshold safety rules must see the most the prescription allows. None when
    the posology is unparsed or anything needed is missing.
    """
    if not posology.parsed:
        return None
    if posology.unit in _MG_PER_UNIT:
        return posology.mg_per_day
    intakes = (
        posology.max_intakes_per_day if posology.max_intakes_per_day is not None else posology.intakes_per_day
    )
    if posology.dose_per_intake is None or intakes is None or strength_mg_per_unit is None:
        return None
    return round(posology.dose_per_intake * intakes * strength_mg_per_unit, 9)
