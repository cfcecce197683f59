"""Catalogue loading: validation errors name the entry; alias expansion."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.enrich.catalogue import default_catalogue_path, expand_alias, load_catalogue
from pipeline.errors import CatalogueError

PLACE = """
  - id: {id}
    kind: place
    type: {type}
    name: Somewhere
    aliases: [{alias}]
    lat: 35.0
    lon: 40.0
"""


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "catalogue.yaml"
    path.write_text("version: 1\nentities:\n" + body, encoding="utf-8")
    return path


def test_project_catalogue_loads_and_covers_the_watch_topics() -> None:
    cat = load_catalogue()
    assert cat.path == default_catalogue_path()
    for eid in ("al-tanf", "deir-ez-zor", "deir-ez-zor-governorate", "al-mayadin", "abu-kamal", "hajin",
                "al-omar-oil-field", "conoco-gas-plant", "rukban", "al-tanf-zone", "maghawir-al-thawra"):
        assert eid in cat.entities
    mat = cat.entities["maghawir-al-thawra"]
    assert "al-Tanf" in mat.affiliation and mat.role
    for e in cat.entities.values():
        if e.kind == "place":
            assert e.lat is not None and e.lon is not None, e.id
        assert e.sources, f"{e.id} has no source"
    assert cat.entities["al-mayadin"].governorate == "deir-ez-zor-governorate"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (PLACE.format(id="x-town", type="metropolis", alias="X"), "entity x-town: .*not a place type"),
        (PLACE.format(id="x-town", type="town", alias="X").replace("    lat: 35.0\n", ""), "entity x-town: .*lat"),
        (PLACE.format(id="x-town", type="town", alias="X") + PLACE.format(id="x-town", type="town", alias="Y"),
         "entity x-town: duplicate id"),
        (PLACE.format(id="a-town", type="town", alias="Same") + PLACE.format(id="b-town", type="town", alias="Same"),
         "entity b-town: alias 'Same'.*already an alias of a-town"),
        (PLACE.format(id="x-town", type="town", alias="{text: X, context: {near: [y]}}"), "must say why"),
        (PLACE.format(id="x-town", type="town", alias="X") + "    governorate: nowhere\n", "not a governorate"),
        (PLACE.format(id="x-town", type="town", alias="{text: X, why: w, context: {cooccur: [ghost]}}"),
         "unknown cooccur entity ghost"),
        ("  - {id: Bad Id, kind: actor, type: person, name: N, aliases: [N]}\n", "entity Bad Id"),
    ],
)
def test_invalid_entries_are_named(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(write(tmp_path, body))


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="not found"):
        load_catalogue(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("entities: [\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="invalid YAML"):
        load_catalogue(bad)


def test_article_expansion_covers_assimilated_and_joined_forms() -> None:
    base, keys = expand_alias("Deir ez-Zor")
    assert base == {"deir ez zor"}
    for form in ("deir al zor", "deir el zor", "deir az zor", "deir ezzor", "deir azzor", "deirezzor",
                 "deir alzor"):
        assert form in keys
    assert "deir ar zor" not in keys  # a mismatched article is left to typo tolerance
    _, tanf = expand_alias("al-Tanf")
    assert {"at tanf", "al tanf", "attanf", "et tanf"} <= tanf
    assert "as tanf" not in tanf
    _, walid = expand_alias("al-Walid")
    assert not {"as walid", "at walid", "an walid"} & walid  # English "as Walid said" is not the crossing


def test_alternation_and_arabic_prefixes() -> None:
    base, _ = expand_alias("{Deir|Dayr} al-{Zor|Zawr}")
    assert base == {"deir al zor", "deir al zawr", "dayr al zor", "dayr al zawr"}
    _, arabic = expand_alias("التنف")
    assert {"التنف", "والتنف", "بالتنف", "للتنف"} <= arabic
