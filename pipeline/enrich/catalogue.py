"""The gazetteer catalogue (``seeds/catalogue.yaml``): loading, validation, alias expansion.

File format (validated on load; any problem raises :class:`CatalogueError` naming the entry)::

    version: 1
    entities:
      - id: al-tanf                 # stable id, lower-case, [a-z0-9-]
        kind: place                 # place | actor
        type: base                  # see PLACE_TYPES / ACTOR_TYPES
        name: al-Tanf               # canonical name
        aliases:                    # spellings; "{a|b}" expands to each alternative
          - "{al|at}-{Tanf|Tanaf}"
          - التنف
          - text: Tanf              # a short/ambiguous alias: counts only with context
            context: {near: [garrison, base], within: 40, cooccur: [syria]}
            why: "bare 'Tanf' is ambiguous; needs a garrison/base word nearby or Syria in the article"
          - {text: SDF, case: upper, context: {cooccur: [syria]}, why: "..."}
        lat: 33.4967                # places: required
        lon: 38.6533
        governorate: homs-governorate   # places below governorate level: the governorate entity id
        affiliation: ...            # actors: who backs them / whom they belong to
        role: ...
        seeds: [000_2b87dc7de435075d]   # seed documents naming it
        sources: ["GeoNames 170794 (CC BY)"]
    lookalikes:                     # spans that must never be read as an entity
      - {text: Deir Yassin, why: "village near Jerusalem, not Deir ez-Zor"}

Arabic articles inside Latin aliases (``al``, ``el``, ``ad``, ``az``, ``as``, ``at``, ``ar``,
``ez`` ...) are expanded to every separate form, to the joined forms (``alzour``,
``ezzor``) and to the form joined to the preceding word (``deirezzor``). Arabic-script
aliases get the attached prefixes و ب ل ف ك (``والتنف``, ``بدير الزور``, ``للتنف``).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..config import yaml_load
from ..errors import CatalogueError
from .normalize import normalize_key

__all__ = [
    "PLACE_TYPES",
    "ACTOR_TYPES",
    "ARTICLES",
    "AliasSpec",
    "ContextRule",
    "Entity",
    "Lookalike",
    "Catalogue",
    "Variant",
    "load_catalogue",
    "expand_alias",
    "default_catalogue_path",
]

PLACE_TYPES = frozenset({
    "country", "governorate", "district", "subdistrict", "city", "town", "village", "base", "border_crossing",
    "camp", "oil_field", "gas_field", "facility", "region", "river", "road",
})
ACTOR_TYPES = frozenset({
    "state", "armed_force", "armed_group", "terrorist_organization", "political_body", "person",
    "international_body", "media",
})
#: separate forms of the Arabic definite article in transliteration
ARTICLES = ("al", "el", "ad", "adh", "az", "as", "ash", "at", "ath", "ar", "an", "ed", "ez", "es", "esh", "et",
            "er", "en", "ul")
_ARTICLE_SET = frozenset(ARTICLES)
_SUN_LETTERS = frozenset("tdrzsnl")
_ARABIC_PREFIXES = ("و", "ب", "ف", "ك", "وب", "وف")
_ARABIC = re.compile("[\u0600-\u06ff]")
_ALT = re.compile(r"\{([^{}]*)\}")
_ID = r"^[a-z0-9][a-z0-9-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContextRule(_Strict):
    """When a short/ambiguous alias counts.

    Positive part (if any is given): a ``near`` word within ``within`` characters, or a
    ``cooccur`` entity found (unconditionally) elsewhere in the same article.
    Vetoes: never when a ``not_near`` word is within ``within`` characters, or when a
    ``not_with`` entity is found in the same article (e.g. Al Mayadeen the TV channel).
    """

    near: list[str] = Field(default_factory=list)
    within: int = Field(40, ge=1, le=400)
    cooccur: list[str] = Field(default_factory=list)
    not_near: list[str] = Field(default_factory=list)
    not_with: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> ContextRule:
        if not (self.near or self.cooccur or self.not_near or self.not_with):
            raise ValueError("context needs near, cooccur, not_near or not_with")
        return self


class AliasSpec(_Strict):
    text: str = Field(min_length=1)
    context: ContextRule | None = None
    case: Literal["any", "upper", "exact"] = "any"
    fuzzy: bool | None = None  # default: typo-tolerant when the alias has no {a|b} alternation
    why: str = ""

    @property
    def typo_tolerant(self) -> bool:
        return self.fuzzy if self.fuzzy is not None else "{" not in self.text

    @model_validator(mode="after")
    def _documented(self) -> AliasSpec:
        if (self.context is not None or self.case != "any") and not self.why.strip():
            raise ValueError(f"alias {self.text!r}: a context or case rule must say why (field 'why')")
        return self


class _EntityModel(_Strict):
    id: str = Field(pattern=_ID)
    kind: Literal["place", "actor"]
    type: str
    name: str = Field(min_length=1)
    aliases: list[str | AliasSpec] = Field(min_length=1)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    governorate: str | None = None
    country: str | None = None
    affiliation: str = ""
    role: str = ""
    seeds: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    note: str = ""

    @model_validator(mode="after")
    def _check_kind(self) -> _EntityModel:
        if self.kind == "place":
            if self.type not in PLACE_TYPES:
                raise ValueError(f"type {self.type!r} is not a place type ({', '.join(sorted(PLACE_TYPES))})")
            if self.lat is None or self.lon is None:
                raise ValueError("a place needs lat and lon")
        elif self.type not in ACTOR_TYPES:
            raise ValueError(f"type {self.type!r} is not an actor type ({', '.join(sorted(ACTOR_TYPES))})")
        return self


class Lookalike(_Strict):
    text: str = Field(min_length=1)
    why: str = Field(min_length=1)


@dataclass(frozen=True)
class Entity:
    id: str
    kind: str
    type: str
    name: str
    aliases: tuple[AliasSpec, ...]
    lat: float | None = None
    lon: float | None = None
    governorate: str | None = None
    country: str | None = None
    affiliation: str = ""
    role: str = ""
    seeds: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Variant:
    """One normalised key the matcher looks for."""

    key: str  # normalised
    entity_id: str | None  # None for a look-alike blocker
    alias: AliasSpec
    base: bool  # True for the alias as written (no article/prefix expansion)


@dataclass
class Catalogue:
    entities: dict[str, Entity]
    lookalikes: list[Lookalike]
    path: Path | None = None
    variants: list[Variant] = field(default_factory=list)
    #: the keys matched with typo tolerance: base keys of typo-tolerant, context-free aliases
    fuzzy_keys: list[Variant] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entities)

    def entity(self, entity_id: str) -> Entity:
        return self.entities[entity_id]

    def places_in(self, governorate_id: str) -> list[str]:
        return [e.id for e in self.entities.values() if e.governorate == governorate_id]


def default_catalogue_path() -> Path:
    """``seeds/catalogue.yaml`` of the source checkout (also what an editable install sees)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "seeds" / "catalogue.yaml"
        if candidate.is_file():
            return candidate
    return here.parents[2] / "seeds" / "catalogue.yaml"


def _alternatives(text: str) -> list[str]:
    parts = _ALT.split(text)
    # split gives [lit, alts, lit, alts, lit...]
    choices = [[p] if i % 2 == 0 else p.split("|") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def _article_spellings(written: str, nxt: str) -> set[str]:
    """Separate spellings of an article before ``nxt``: al/el/ul always, plus the assimilated forms
    the next word's sun letter allows (at-Tanf, ez-Zor, ash-Sham), plus the one written in the alias.
    Mismatched forms ("as Zawr", "Ar Zawr") are left to typo tolerance, which folds every article
    to ``al``; generating them would turn English "as"/"at"/"an" before a name into hits."""
    forms = {"al", "el", "ul", written}
    for digraph in ("sh", "th", "dh"):
        if nxt.startswith(digraph):
            forms |= {"a" + digraph, "e" + digraph}
            return forms
    if nxt[0] in _SUN_LETTERS:
        forms |= {"a" + nxt[0], "e" + nxt[0]}
    return forms


def _article_forms(tokens: list[str]) -> set[str]:
    """Every spelling of the article(s) in a normalised, tokenised Latin alias."""
    slots: list[list[list[str]]] = []  # per position: list of token-sequences it may become
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in _ARTICLE_SET and i + 1 < len(tokens):
            nxt = tokens[i + 1]
            separate = _article_spellings(tok, nxt)
            forms: list[list[str]] = [[a, nxt] for a in sorted(separate)]
            joined = {"al" + nxt, "el" + nxt}
            if nxt[0] in _SUN_LETTERS:
                joined |= {"a" + nxt[0] + nxt, "e" + nxt[0] + nxt}
            forms += [[j] for j in sorted(joined)]
            forms += [["\x01" + j] for j in sorted(joined)]  # \x01 = glue to the previous token
            slots.append(forms)
            i += 2
        else:
            slots.append([[tok]])
            i += 1
    out: set[str] = set()
    for combo in itertools.islice(itertools.product(*slots), 5000):
        words: list[str] = []
        for seq in combo:
            for w in seq:
                if w.startswith("\x01"):
                    if words:
                        words[-1] += w[1:]
                    else:
                        words.append(w[1:])
                else:
                    words.append(w)
        out.add(" ".join(words))
    return out


def expand_alias(text: str) -> tuple[set[str], set[str]]:
    """``(base_keys, all_keys)``: the normalised keys an alias stands for."""
    base: set[str] = set()
    out: set[str] = set()
    for alt in _alternatives(text):
        key = normalize_key(alt)
        if not key:
            continue
        base.add(key)
        out.add(key)
        if _ARABIC.search(key):
            for prefix in _ARABIC_PREFIXES:
                out.add(prefix + key)
            if key.startswith("ال"):
                out.add("لل" + key[2:])
                out.add("ولل" + key[2:])
        else:
            out |= _article_forms(key.split(" "))
    return base, out


def _fail(where: str, exc: ValidationError | str) -> CatalogueError:
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        # for "str | AliasSpec" pydantic reports both branches: the string branch is rarely the point
        err = next((e for e in errors if e["type"] != "string_type"), errors[0])
        loc = ".".join(str(p) for p in err["loc"] if p not in ("AliasSpec", "str"))
        msg = f"{loc}: {err['msg']}" if loc else err["msg"]
    else:
        msg = exc
    return CatalogueError(f"{where}: {msg}")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(f"{path}: catalogue file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise CatalogueError(f"{path}:{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("entities"), list):
        raise CatalogueError(f"{path}: (top level): expected a mapping with an 'entities' list")
    return data


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Load and validate the catalogue; raise :class:`CatalogueError` naming the bad entry."""
    path = Path(path) if path is not None else default_catalogue_path()
    data = _read(path)
    unknown = set(data) - {"version", "entities", "lookalikes", "attribution"}
    if unknown:
        raise CatalogueError(f"{path}: (top level): unknown key {sorted(unknown)[0]!r}")
    entities: dict[str, Entity] = {}
    for i, raw in enumerate(data["entities"]):
        ident = raw.get("id", f"#{i}") if isinstance(raw, dict) else f"#{i}"
        try:
            m = _EntityModel.model_validate(raw)
        except ValidationError as exc:
            raise _fail(f"{path}: entity {ident}", exc) from None
        if m.id in entities:
            raise CatalogueError(f"{path}: entity {m.id}: duplicate id")
        aliases = tuple(a if isinstance(a, AliasSpec) else AliasSpec(text=a) for a in m.aliases)
        entities[m.id] = Entity(
            id=m.id, kind=m.kind, type=m.type, name=m.name, aliases=aliases, lat=m.lat, lon=m.lon,
            governorate=m.governorate, country=m.country, affiliation=m.affiliation, role=m.role,
            seeds=tuple(m.seeds), sources=tuple(m.sources),
        )
    lookalikes: list[Lookalike] = []
    for i, raw in enumerate(data.get("lookalikes") or []):
        try:
            lookalikes.append(Lookalike.model_validate(raw))
        except ValidationError as exc:
            raise _fail(f"{path}: lookalike #{i}", exc) from None
    cat = Catalogue(entities=entities, lookalikes=lookalikes, path=path)
    _check_references(cat)
    cat.variants = _variants(cat)
    cat.fuzzy_keys = _fuzzy_keys(cat)
    return cat


def _check_references(cat: Catalogue) -> None:
    for e in cat.entities.values():
        if e.governorate is not None:
            gov = cat.entities.get(e.governorate)
            if gov is None or gov.type != "governorate":
                raise CatalogueError(f"{cat.path}: entity {e.id}: governorate {e.governorate!r} is not a governorate")
        for a in e.aliases:
            for ref in [*a.context.cooccur, *a.context.not_with] if a.context else []:
                if ref not in cat.entities:
                    raise CatalogueError(f"{cat.path}: entity {e.id}: alias {a.text!r}: unknown cooccur entity {ref}")


def _variants(cat: Catalogue) -> list[Variant]:
    owner: dict[str, tuple[str, str]] = {}  # key -> (owner label, alias text)
    out: list[Variant] = []

    def add(key: str, entity_id: str | None, alias: AliasSpec, base: bool) -> None:
        label = entity_id or "lookalike"
        prev = owner.get(key)
        if prev is not None:
            if prev[0] == label:
                return
            raise CatalogueError(
                f"{cat.path}: entity {label}: alias {alias.text!r} gives {key!r}, already an alias of {prev[0]} "
                f"({prev[1]!r})")
        owner[key] = (label, alias.text)
        out.append(Variant(key=key, entity_id=entity_id, alias=alias, base=base))

    for e in cat.entities.values():
        for a in e.aliases:
            base, keys = expand_alias(a.text)
            if not keys:
                raise CatalogueError(f"{cat.path}: entity {e.id}: alias {a.text!r} is empty after normalisation")
            for k in sorted(keys, key=lambda k: (k not in base, k)):
                add(k, e.id, a, k in base)
    for lk in cat.lookalikes:
        spec = AliasSpec(text=lk.text, why=lk.why, fuzzy=False)
        for k in sorted(expand_alias(lk.text)[1]):
            add(k, None, spec, False)
    return out


#: entity types whose long names are matched with typo tolerance (places and armed actors)
FUZZY_ACTOR_TYPES = frozenset({"armed_group", "armed_force", "terrorist_organization"})


def _fuzzy_keys(cat: Catalogue) -> list[Variant]:
    out: dict[str, Variant] = {}
    for e in cat.entities.values():
        if e.kind == "actor" and e.type not in FUZZY_ACTOR_TYPES:
            continue
        for a in e.aliases:
            if not a.typo_tolerant or a.context is not None or a.case != "any":
                continue
            for key in sorted(expand_alias(a.text)[0]):
                if not _ARABIC.search(key):
                    out.setdefault(key, Variant(key=key, entity_id=e.id, alias=a, base=True))
    return list(out.values())
