"""Deir ez-Zor governorate's gazetteer (issue 12): sourced sub-districts and coordinates, the places news
names alone in English and Arabic, and the look-alikes that must stay out. Sentences are our own."""

from __future__ import annotations

import re

import pytest

from pipeline.enrich import Tagger
from pipeline.enrich.catalogue import Entity, load_catalogue

GOV = "deir-ez-zor-governorate"
_OCHA_PLACE = re.compile(r"^OCHA P-code (C|N)\d{4} .*sub-district .* (SY09\d{4}) ")
_OCHA_SUB = re.compile(r"^OCHA P-code (SY09\d{4}) ")


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger.load()


def _inside() -> list[Entity]:
    return [e for e in load_catalogue().entities.values() if e.governorate == GOV]


def test_sub_districts_follow_the_ocha_p_codes() -> None:
    cat = load_catalogue()
    sub_pcode = {}
    for e in _inside():
        if e.type == "subdistrict":
            codes = [m.group(1) for s in e.sources if (m := _OCHA_SUB.match(s))]
            assert len(codes) == 1, e.id
            sub_pcode[e.id] = codes[0]
    assert len(sub_pcode) == 14 and len(set(sub_pcode.values())) == 14
    checked = 0
    for e in _inside():
        codes = {m.group(2) for s in e.sources if (m := _OCHA_PLACE.match(s))}
        if codes:
            assert codes == {sub_pcode[str(e.subdistrict)]}, (e.id, codes, e.subdistrict)
            checked += 1
    assert checked >= 100
    # corrections the P-codes brought to the first pass's readings
    for eid, sub in [("abu-hardub", "dhiban-subdistrict"), ("al-hasrat", "abu-kamal-subdistrict"),
                     ("mahkan", "al-mayadin-subdistrict"), ("al-dablan", "al-asharah-subdistrict"),
                     ("jadid-ekaidat", "khasham-subdistrict"), ("al-kashmah", "hajin-subdistrict")]:
        assert cat.entities[eid].subdistrict == sub, eid


def test_every_place_says_where_its_coordinates_come_from() -> None:
    places = [e for e in _inside() if e.type not in {"district", "subdistrict"}]
    assert len(places) >= 135
    sourced = 0
    for e in places:
        assert e.lat is not None and e.lon is not None
        assert 33.9 < e.lat < 36.3 and 38.8 < e.lon < 41.5, e.id  # inside the governorate's box
        if not any(s.startswith("approx.") for s in e.sources):
            assert any(k in s for s in e.sources for k in ("OpenStreetMap", "GeoNames", "Wikipedia")), e.id
            sourced += 1
    assert sourced >= 45


@pytest.mark.parametrize(("text", "entity"), [
    ("Two fishermen were pulled from the river at Jazrat Milaj.", "jazrat-milaj"),
    ("Farmers in Hawayij Dhiyab Jazira are waiting for diesel.", "hawayij-dhiyab-jazira"),
    ("A council was elected in Hawayij Bu Masaa.", "hawayij-bu-masaa"),
    ("Gunmen killed a shepherd near al-Harmushiyah.", "al-harmushiyah"),
    ("The old quarter of Ma'dan Atiq flooded in spring.", "madan-atiq"),
    ("Looters dug more pits at Tell Hariri this winter.", "tell-hariri"),
    ("A new road leads to the Rahba castle.", "rahba-castle"),
    ("A clinic opened in Suwaydan Shamiya.", "suwaydan-shamiya"),
    ("A car bomb exploded at the entrance of Gharaneej.", "gharanij"),
    ("Teachers in Jdeid Agidat went unpaid for months.", "jadid-ekaidat"),
    ("A mortar round hit the school in al-Quria.", "al-quriyah"),
    ("Tribal fighters stormed al-Izba and Theeban in eastern Syria.", "al-izba"),
    ("Tribal fighters stormed al-Izba and Theeban in eastern Syria.", "dhiban"),
    ("Militias withdrew from al-Ghabra towards Abu Kamal.", "al-ghabra"),
    ("Excavations at Tell Sheikh Hamad found Assyrian tablets.", "tell-sheikh-hamad"),
    ("Militiamen reinforced the Ain Ali shrine overnight.", "ain-ali-shrine"),
    ("تعزيزات عسكرية إلى مزار عين علي", "ain-ali-shrine"),
    ("انفجار لغم قرب جزرة ميلاج", "jazrat-milaj"),
    ("عودة الأهالي إلى حوايج ذياب شامية", "hawayij-dhiyab-shamiya"),
    ("سرقة آثار من تل الحريري", "tell-hariri"),
    ("اشتباكات في الحريزة بريف دير الزور", "al-hrayzah"),
])
def test_places_named_alone(tagger: Tagger, text: str, entity: str) -> None:
    result = tagger.tag(text)
    assert entity in {e.id for e in result.entities}
    assert result.topic_ids == ["deir-ez-zor"]


@pytest.mark.parametrize("text", [
    "The SDF entered Ma'dan, on the Raqqa bank of the Euphrates.",  # the town of Ma'dan is Raqqa's
    "Mari won the regional title in Syria last year.",  # bare 'Mari' is not the ancient city
    "Crowds carried posters of Sheikh Yassin through Gaza.",  # the Hamas founder
    "Troops shelled Maksar al-Hussan east of Homs in Syria.",
    "Rockets fell on Saif al-Dawla in Aleppo, Syria.",
    "Murat Karayilan said the SDF would not leave Syria.",  # a Turkish given name, not Marrat
    "The Safsafah front near Tabqa was quiet, the SDF said.",  # a Raqqa village, not catalogued
])
def test_look_alikes_do_not_fire_deir_ez_zor(tagger: Tagger, text: str) -> None:
    result = tagger.tag(text)
    assert "deir-ez-zor" not in result.topic_ids
    assert not [e.id for e in result.entities if e.governorate == GOV]


def test_arabic_common_words_are_not_read_as_villages(tagger: Tagger) -> None:
    # ضمان "guarantee", الحصان "the horse", العزبة "the farm", الطيبة "the good one": Arabic words that are also
    # village names are catalogued only in their Latin spellings
    text = "في ريف دير الزور: ضمان الحصان في العزبة الطيبة"
    found = {e.id for e in tagger.tag(text).entities}
    assert found == {"deir-ez-zor-governorate"}
