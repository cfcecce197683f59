"""Issue 12's error classes: places named alone, regional context, Arabic as written online, typos,
outlets named after places, geofenced topics, and search that knows the spellings."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Geofence, Watchlist
from pipeline.enrich import Tagger
from pipeline.enrich.aliases import expand_alias
from pipeline.enrich.catalogue import load_catalogue
from pipeline.enrich.topics import distance_km, load_default_watchlist
from pipeline.errors import CatalogueError, InputError
from pipeline.index.sqlite import SQLiteIndex
from pipeline.search import query_terms, search_documents, suggest


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger.load()


def ids(tagger: Tagger, text: str) -> set[str]:
    return {e.id for e in tagger.tag(text).entities}


def test_every_subdistrict_has_its_centre_and_places_name_a_subdistrict() -> None:
    cat = load_catalogue()
    subs = [e for e in cat.entities.values() if e.type == "subdistrict" and e.governorate == "deir-ez-zor-governorate"]
    assert len(subs) == 14
    inside = [e for e in cat.entities.values() if e.governorate == "deir-ez-zor-governorate"]
    assert len(inside) >= 100
    for e in inside:
        assert e.sources and e.lat is not None
        if e.type in {"town", "village", "oil_field", "gas_field", "base", "border_crossing", "facility"}:
            assert e.subdistrict is not None, e.id


@pytest.mark.parametrize(("text", "entity"), [
    ("Residents of al-Busayrah said two boats were sunk.", "al-busayrah"),
    ("Tribal elders met in Abu Hamam.", "abu-hamam"),
    ("Aid trucks reached Khasham after a week.", "khasham"),
    ("Rockets were fired at the Conoco gas field.", "conoco-gas-plant"),
    ("Mission Support Site Conoco came under attack.", "conoco-gas-plant"),
    ("US troops at the Green Village base repelled an attack.", "al-omar-oil-field"),
    ("Strikes hit warehouses near Hamdan airport.", "hamdan-airport"),
])
def test_places_named_alone_fire_the_topic(tagger: Tagger, text: str, entity: str) -> None:
    result = tagger.tag(text)
    assert entity in {e.id for e in result.entities}
    assert result.topic_ids == ["deir-ez-zor"]


def test_ambiguous_names_need_regional_support(tagger: Tagger) -> None:
    assert "al-susah" not in ids(tagger, "Tourists like al-Susah beach.")
    assert "al-susah" in ids(tagger, "After Hajin fell, fighting moved to al-Susah.")  # another place
    assert "al-susah" in ids(tagger, "Akaidat tribesmen gathered in al-Susah.")  # region vocabulary
    assert "al-susah" in ids(tagger, "SDF fighters took al-Susah from ISIS in Syria.")  # Syrian-war context
    assert "al-salihiyah" not in ids(tagger, "Shops in the al-Salihiyah quarter of Damascus reopened in Syria.")
    assert "mazlum" not in ids(tagger, "Mazloum Abdi visited Khasham.")  # the SDF commander, not the village
    with pytest.raises(CatalogueError, match="unknown region"):
        load_catalogue(_with_alias(Path(str(load_catalogue().path)), "{text: X, context: {region: nowhere}, why: w}"))


def _with_alias(path: Path, alias: str) -> Path:
    out = path.parent.parent / "var" / "catalogue-test.yaml"
    out.parent.mkdir(exist_ok=True)
    text = path.read_text(encoding="utf-8").replace("  - id: hajin\n    kind: place\n    type: town\n    name: Hajin\n"
                                                    "    aliases:\n", f"  - id: hajin\n    kind: place\n    type: town\n"
                                                    f"    name: Hajin\n    aliases:\n      - {alias}\n", 1)
    out.write_text(text, encoding="utf-8")
    return out


@pytest.mark.parametrize(("text", "entity"), [
    ("قصف على ديرالزور", "deir-ez-zor"),  # run together
    ("قتلى في  دير   الزور", "deir-ez-zor"),  # spaced
    ("وصلت تعزيزات لدير الزور", "deir-ez-zor"),  # attached preposition
    ("قصف على دیر الزور", "deir-ez-zor"),  # Persian yeh
    ("اشتباكات في البو كمال", "abu-kamal"),
    ("انفجار في ابوكمال", "abu-kamal"),
    ("غارات على اللواء137", "brigade-137"),  # digits run on
    ("استهداف اللواء ١٣٧ في دير الزور", "brigade-137"),  # Arabic-Indic digits
    ("منطقة الـ 55 كم", "al-tanf-zone"),
])
def test_arabic_as_written_online(tagger: Tagger, text: str, entity: str) -> None:
    assert entity in ids(tagger, text), text


def test_arabic_common_words_need_context(tagger: Tagger) -> None:
    assert tagger.tag("اشترى سيارة هجين جديدة").topic_ids == []  # 'hybrid'
    assert tagger.tag("وقف المقاتلون في ميادين القتال").topic_ids == []  # 'battlefields'
    assert tagger.tag("احتفل السوريون بعيد الجلاء").topic_ids == []  # Evacuation Day
    assert "hajin" in ids(tagger, "عودة الأهالي إلى هجين بريف دير الزور")


def test_alias_expansion_joined_spaced_and_digits() -> None:
    _, keys = expand_alias("دير الزور")
    assert {"ديرالزور", "بديرالزور", "لدير الزور", "دير ال زور"} <= keys
    _, keys = expand_alias("T-2 station")
    assert {"t 2 station", "t2 station"} <= keys


@pytest.mark.parametrize(("text", "entity"), [
    ("Fighting near Gharanji and Hajin.", "gharanij"),  # transposition, 8 letters
    ("Residents of Subaykan and al-Mayadin fled.", "subaykhan"),
    ("Drones struck Muhasen, east of Deir ez-Zor.", "muhasan"),  # 7 letters, one substitution
])
def test_typos_of_six_letters_and_more_with_support(tagger: Tagger, text: str, entity: str) -> None:
    hit = next(e for e in tagger.tag(text).entities if e.id == entity)
    assert all(m.fuzzy for m in hit.mentions)


def test_typos_need_support_a_capital_and_six_letters(tagger: Tagger) -> None:
    assert "gharanij" not in ids(tagger, "Fighting near Gharanji.")  # no supporting place
    assert "gharanij" not in ids(tagger, "the gharanji of Hajin")  # not written as a name
    assert "hajin" not in ids(tagger, "Hajn and Abu Kamal")  # short names never
    assert "al-sabha" not in ids(tagger, "Daily Sabah said Hajin fell.")


@pytest.mark.parametrize(("text", "topics", "media"), [
    ("Al Mayadeen's correspondent said the talks collapsed.", [], "al-mayadeen-tv"),
    ("Speaking to Al Mayadeen, the minister denied it.", [], "al-mayadeen-tv"),
    ("Al Mayadeen reported that the delegation left.", [], "al-mayadeen-tv"),
    ("قال مراسل الميادين إن المفاوضات توقفت", [], "al-mayadeen-tv"),
    ("Deir ez-Zor 24 reported an attack.", [], "deir-ez-zor-24"),
    ("Al Mayadeen's correspondent in al-Mayadin said shelling continued.", ["deir-ez-zor"], "al-mayadeen-tv"),
])
def test_outlets_named_after_places_are_media(tagger: Tagger, text: str, topics: list[str], media: str) -> None:
    result = tagger.tag(text)
    assert result.topic_ids == topics
    assert next(e for e in result.entities if e.id == media).type == "media"


def test_outlet_name_followed_by_a_count_is_the_city(tagger: Tagger) -> None:
    assert ids(tagger, "In Deir ez-Zor 24 hours later the curfew ended.") == {"deir-ez-zor"}


def test_geofence_fires_with_place_and_distance() -> None:
    wl = load_default_watchlist()
    wl.topic("al-tanf").within = Geofence(entity="al-tanf", km=55)
    tagger = Tagger(Tagger.load().catalogue, wl)
    (topic,) = tagger.tag("Civilians in Rukban camp lack food.").topics
    (reason,) = topic.reasons
    assert reason.relation == "within" and reason.entity_id == "rukban"
    assert reason.distance_km is not None and 15 < reason.distance_km < 30
    assert "km from al-Tanf" in reason.entity_name
    assert tagger.tag("Aid reached Palmyra.").topic_ids == []  # 120 km away
    assert tagger.tag("Syria and Jordan talked.").topic_ids == []  # countries are not points
    assert round(distance_km(33.5, 38.65, 34.56077, 38.28055)) == 123
    bad = Watchlist.model_validate({"topics": [{"id": "x", "within": {"entity": "isis", "km": 5}}]})
    with pytest.raises(CatalogueError, match="within.entity"):
        Tagger.load(watchlist=bad)


def test_search_knows_the_spellings(tagger: Tagger, tmp_path: Path) -> None:
    text, terms = query_terms(tagger, "Deir Ezzor oil")
    assert text == "oil" and terms[0].ids == ("deir-ez-zor",) and terms[0].topics == ("deir-ez-zor",)
    assert "dayr az zawr" in terms[0].spellings
    index = SQLiteIndex(tmp_path / "index.sqlite3")
    docs = [
        {"id": "a", "url": "https://x/a", "title": "Siege of Deir ez-Zor", "text": "The city held.",
         "entities": [{"id": "deir-ez-zor"}], "topics": ["deir-ez-zor"]},
        {"id": "b", "url": "https://x/b", "title": "Families flee al-Mayadin", "text": "Down the river.",
         "entities": [{"id": "al-mayadin"}], "topics": ["deir-ez-zor"]},
        {"id": "c", "url": "https://x/c", "title": "Garrison", "text": "At Tanf.", "entities": [{"id": "al-tanf"}],
         "topics": ["al-tanf"]},
    ]
    index.index_documents(docs)
    for query in ("Deir Ezzor", "Deir ez-Zor", "دير الزور", "Dayr az-Zawr"):
        assert {h.id for h in search_documents(index, query, tagger=tagger)} == {"a", "b"}, query
    with pytest.raises(InputError, match="did you mean deir-ez-zor"):
        search_documents(index, "x", tagger=tagger, topic="deir-ezzor")
    with pytest.raises(InputError, match="unknown entity 'mayadin'; did you mean al-mayadin"):
        search_documents(index, "x", tagger=tagger, entity="mayadin")
    index.close()
    assert suggest("zzzz", ["al-tanf"]) == ""
