"""The user overlay: analysts' fixes to the gazetteer without a code change.

``config/catalogue-overlay.yaml`` (``$PIPELINE_CONFIG_DIR``; absent = nothing to add) is
validated on load; an error names the file, the key and the problem::

    aliases:                       # extra spellings of catalogue entities
      - {entity: al-mayadin, text: "Mayadeen city"}
      - {entity: hajin, text: Hajeen, context: {region: deir-ez-zor}, why: "..."}   # AliasSpec fields
    blockers:                      # spans never read as an entity (a look-alike)
      - {text: "Tanf Street", why: "a street in ..."}
    context_words:                 # more supporting words for a region's ambiguous names
      deir-ez-zor: [jazira, shamiya]

An overlay alias that gives the same key as another entity's alias is an error, exactly as in
the catalogue: ambiguity stays a visible decision.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import CatalogueError
from .catalogue import AliasSpec, Catalogue, Lookalike, _fail, _read_yaml

__all__ = ["OVERLAY_FILE", "Overlay", "OverlayAlias", "apply_overlay", "default_overlay_path", "load_overlay"]

OVERLAY_FILE = "catalogue-overlay.yaml"


class OverlayAlias(AliasSpec):
    entity: str = Field(min_length=1)


class Overlay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    aliases: list[OverlayAlias] = Field(default_factory=list)
    blockers: list[Lookalike] = Field(default_factory=list)
    context_words: dict[str, list[str]] = Field(default_factory=dict)


def default_overlay_path() -> Path:
    """``$PIPELINE_CONFIG_DIR/catalogue-overlay.yaml``, else the project's ``config/`` one."""
    env = os.environ.get("PIPELINE_CONFIG_DIR")
    if env:
        return Path(env) / OVERLAY_FILE
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "config" / "watchlist.yaml").is_file():
            return parent / "config" / OVERLAY_FILE
    return Path("config") / OVERLAY_FILE


def load_overlay(path: Path) -> Overlay:
    """Read and validate an overlay file (an empty file is an empty overlay)."""
    data = _read_yaml(path) or {}
    try:
        return Overlay.model_validate(data)
    except ValidationError as exc:
        raise _fail(str(path), exc) from None


def apply_overlay(cat: Catalogue, path: Path) -> None:
    """Merge the overlay at ``path`` into ``cat`` (before its keys are built)."""
    ov = load_overlay(path)
    for i, extra in enumerate(ov.aliases):
        entity = cat.entities.get(extra.entity)
        if entity is None:
            raise CatalogueError(f"{path}: aliases.{i}.entity: unknown entity {extra.entity!r}")
        spec = AliasSpec.model_validate(extra.model_dump(exclude={"entity"}))
        cat.entities[entity.id] = dataclasses.replace(entity, aliases=(*entity.aliases, spec))
    cat.lookalikes = [*cat.lookalikes, *ov.blockers]
    for region_id, words in ov.context_words.items():
        region = cat.regions.get(region_id)
        if region is None:
            raise CatalogueError(f"{path}: context_words.{region_id}: unknown region (known: "
                                 f"{', '.join(sorted(cat.regions)) or 'none'})")
        cat.regions[region_id] = region.model_copy(update={"words": [*region.words, *words]})
    cat.overlay = path
