"""The gazetteer catalogue (``seeds/catalogue.yaml``): loading, validation, the keys to match.

File format (validated on load; any problem raises :class:`CatalogueError` naming the entry)::

    version: 1
    regions:                        # supporting context for ambiguous names of one governorate
      - id: deir-ez-zor
        governorate: deir-ez-zor-governorate   # any other place inside it supports
        entities: [euphrates, deir-ez-zor-military-council]   # so do these entities
        words: [jazira, shamiya, akaidat]     # and these words anywhere in the article
        why: "..."
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
          - {text: Hajin, context: {region: deir-ez-zor}, why: "..."}
          - {text: al-Mayadeen, context: {not_near: [correspondent]}, otherwise: al-mayadeen-tv, why: "..."}
        lat: 33.4967                # places: required
        lon: 38.6533
        governorate: homs-governorate   # places below governorate level: the governorate entity id
        subdistrict: hajin-subdistrict  # places inside a subdistrict (nahiya): its entity id
        affiliation: ...            # actors: who backs them / whom they belong to
        role: ...
        seeds: [000_2b87dc7de435075d]   # seed documents naming it
        sources: ["GeoNames 170794 (CC BY)"]
    lookalikes:                     # spans that must never be read as an entity
      - {text: Deir Yassin, why: "village near Jerusalem, not Deir ez-Zor"}

Alias expansion (articles, Arabic prefixes and joined forms, digits): :mod:`.aliases`.
A user overlay (``config/catalogue-overlay.yaml``, :mod:`.overlay`) adds aliases, blockers
and region words on top of this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..config import yaml_load
from ..errors import CatalogueError
from .aliases import ARTICLES, expand_alias, is_arabic

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
    "Region",
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
_ID = r"^[a-z0-9][a-z0-9-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContextRule(_Strict):
    """When a short/ambiguous alias counts.

    Positive part (if any is given): a ``near`` word within ``within`` characters, a
    ``cooccur`` entity found (unconditionally) elsewhere in the same article, or support
    from the named ``region`` (see :class:`Region`).
    Vetoes: never when a ``not_near`` word is within ``within`` characters, when one of
    ``not_prev`` is the word right before or one of ``not_next`` the word right after, or when a ``not_with`` entity is found in the same
    article (e.g. Al Mayadeen the TV channel).
    """

    near: list[str] = Field(default_factory=list)
    within: int = Field(40, ge=1, le=400)
    cooccur: list[str] = Field(default_factory=list)
    region: str | None = None
    not_near: list[str] = Field(default_factory=list)
    not_prev: list[str] = Field(default_factory=list)
    not_next: list[str] = Field(default_factory=list)
    not_with: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> ContextRule:
        if not (self.near or self.cooccur or self.region or self.not_near or self.not_prev or self.not_next
                or self.not_with):
            raise ValueError("context needs near, cooccur, region, not_near, not_prev, not_next or not_with")
        return self

    @property
    def positive(self) -> bool:
        """Whether the rule needs support (otherwise it only vetoes)."""
        return bool(self.near or self.cooccur or self.region)


class AliasSpec(_Strict):
    text: str = Field(min_length=1)
    context: ContextRule | None = None
    case: Literal["any", "upper", "exact"] = "any"
    fuzzy: bool | None = None  # default: typo-tolerant when the alias has no {a|b} alternation
    otherwise: str | None = None  # the entity a mention names when its context rule rejects it
    why: str = ""

    @property
    def typo_tolerant(self) -> bool:
        return self.fuzzy if self.fuzzy is not None else "{" not in self.text

    @model_validator(mode="after")
    def _documented(self) -> AliasSpec:
        if (self.context is not None or self.case != "any") and not self.why.strip():
            raise ValueError(f"alias {self.text!r}: a context or case rule must say why (field 'why')")
        if self.otherwise is not None and self.context is None:
            raise ValueError(f"alias {self.text!r}: 'otherwise' needs a context rule")
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
    subdistrict: str | None = None
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


class Region(_Strict):
    """Supporting context for the ambiguous names of one governorate.

    An alias whose rule says ``region: <id>`` counts when the article also has a sure
    mention of another place inside ``governorate`` (or the governorate itself), of one of
    ``entities`` (actors active there, its rivers), or one of ``words`` anywhere in it.
    """

    id: str = Field(pattern=_ID)
    governorate: str
    entities: list[str] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)
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
    subdistrict: str | None = None
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
    regions: dict[str, Region] = field(default_factory=dict)
    #: the overlay file merged in (see :mod:`.overlay`), if any
    overlay: Path | None = None
    variants: list[Variant] = field(default_factory=list)
    #: the keys matched with typo tolerance: base keys of typo-tolerant, context-free aliases
    fuzzy_keys: list[Variant] = field(default_factory=list)
    #: base keys of every alias (alternatives included) that may take a one-edit typo (see matcher)
    short_fuzzy_keys: list[Variant] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entities)

    def entity(self, entity_id: str) -> Entity:
        return self.entities[entity_id]

    def places_in(self, governorate_id: str) -> list[str]:
        return [e.id for e in self.entities.values() if e.governorate == governorate_id]

    def region_of(self, entity_id: str) -> Region | None:
        """The region whose governorate holds ``entity_id`` (or is it), if one is defined."""
        e = self.entities[entity_id]
        gov = e.governorate or (e.id if e.type == "governorate" else None)
        return next((r for r in self.regions.values() if r.governorate == gov), None) if gov else None


def default_catalogue_path() -> Path:
    """``seeds/catalogue.yaml`` of the source checkout (also what an editable install sees)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "seeds" / "catalogue.yaml"
        if candidate.is_file():
            return candidate
    return here.parents[2] / "seeds" / "catalogue.yaml"


_M = TypeVar("_M", bound=BaseModel)


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


def _read_yaml(path: Path) -> Any:
    """A YAML file's data; any problem is a CatalogueError naming the file (and line)."""
    try:
        return yaml_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise CatalogueError(f"{path}:{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None


def _read(path: Path) -> dict[str, Any]:
    data = _read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("entities"), list):
        raise CatalogueError(f"{path}: (top level): expected a mapping with an 'entities' list")
    return data


def load_catalogue(path: Path | None = None, overlay: Path | None = None, *, matching: bool = True) -> Catalogue:
    """Load and validate the catalogue, then the user overlay if ``overlay`` names an existing file;
    raise :class:`CatalogueError` naming the bad entry (file, entry, key).

    ``matching=False`` skips building the matcher's keys (every spelling variant and typo key, about
    0.3 s): enough to check ids and references, e.g. a watchlist at start-up, where a pass that finds
    nothing new never tags anything."""
    path = Path(path) if path is not None else default_catalogue_path()
    data = _read(path)
    unknown = set(data) - {"version", "entities", "lookalikes", "attribution", "regions"}
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
            governorate=m.governorate, subdistrict=m.subdistrict, country=m.country, affiliation=m.affiliation,
            role=m.role, seeds=tuple(m.seeds), sources=tuple(m.sources),
        )
    lookalikes = [_model(Lookalike, raw, f"{path}: lookalike #{i}") for i, raw in
                  enumerate(data.get("lookalikes") or [])]
    regions: dict[str, Region] = {}
    for i, raw in enumerate(data.get("regions") or []):
        region = _model(Region, raw, f"{path}: region #{i}")
        regions[region.id] = region
    cat = Catalogue(entities=entities, lookalikes=lookalikes, path=path, regions=regions)
    if overlay is not None and Path(overlay).is_file():
        from .overlay import apply_overlay

        apply_overlay(cat, Path(overlay))
    _check_references(cat)
    if not matching:
        return cat
    cat.variants = _variants(cat)
    cat.fuzzy_keys = _fuzzy_keys(cat, alternatives=False)
    cat.short_fuzzy_keys = _fuzzy_keys(cat, alternatives=True)
    return cat


def _model(model: type[_M], raw: Any, where: str) -> _M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _fail(where, exc) from None


def _check_references(cat: Catalogue) -> None:
    where = f"{cat.path}" + (f" (+ overlay {cat.overlay})" if cat.overlay else "")
    for r in cat.regions.values():
        gov = cat.entities.get(r.governorate)
        if gov is None or gov.type != "governorate":
            raise CatalogueError(f"{where}: region {r.id}: governorate {r.governorate!r} is not a governorate")
        for ref in r.entities:
            if ref not in cat.entities:
                raise CatalogueError(f"{where}: region {r.id}: unknown entity {ref}")
    for e in cat.entities.values():
        if e.governorate is not None:
            gov = cat.entities.get(e.governorate)
            if gov is None or gov.type != "governorate":
                raise CatalogueError(f"{where}: entity {e.id}: governorate {e.governorate!r} is not a governorate")
        if e.subdistrict is not None:
            sub = cat.entities.get(e.subdistrict)
            if sub is None or sub.type != "subdistrict" or sub.governorate != e.governorate:
                raise CatalogueError(f"{where}: entity {e.id}: subdistrict {e.subdistrict!r} is not a subdistrict "
                                     f"of {e.governorate}")
        for a in e.aliases:
            rule = a.context
            for ref in [*rule.cooccur, *rule.not_with] if rule else []:
                if ref not in cat.entities:
                    raise CatalogueError(f"{where}: entity {e.id}: alias {a.text!r}: unknown cooccur entity {ref}")
            if rule is not None and rule.region is not None and rule.region not in cat.regions:
                raise CatalogueError(f"{where}: entity {e.id}: alias {a.text!r}: unknown region {rule.region}")
            if a.otherwise is not None and a.otherwise not in cat.entities:
                raise CatalogueError(f"{where}: entity {e.id}: alias {a.text!r}: unknown 'otherwise' entity "
                                     f"{a.otherwise}")


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


def region_only(rule: ContextRule | None) -> bool:
    """A rule that only asks for regional support (typo candidates of such names are allowed: the
    matcher asks the same support of every short-name typo)."""
    return rule is not None and rule.region is not None and not (
        rule.near or rule.cooccur or rule.not_near or rule.not_prev or rule.not_next or rule.not_with)


def _fuzzy_keys(cat: Catalogue, alternatives: bool) -> list[Variant]:
    """Base keys of typo-tolerant Latin aliases with no rule (or a region-only rule). With
    ``alternatives`` every alternative of an ``{a|b}`` alias counts unless it says ``fuzzy: false``
    (the one-edit table of short names costs a look-up per word whatever its size)."""
    out: dict[str, Variant] = {}
    for e in cat.entities.values():
        if e.kind == "actor" and e.type not in FUZZY_ACTOR_TYPES:
            continue
        for a in e.aliases:
            tolerant = a.fuzzy is not False if alternatives else a.typo_tolerant
            if not tolerant or a.case != "any" or not (a.context is None or region_only(a.context)):
                continue
            for key in sorted(expand_alias(a.text)[0]):
                if not is_arabic(key):
                    out.setdefault(key, Variant(key=key, entity_id=e.id, alias=a, base=True))
    return list(out.values())
