"""The tagger: every spelling and look-alike named in the issue, offsets, and why a topic fired."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipeline.config import Watchlist
from pipeline.enrich import Tagger
from pipeline.enrich.topics import load_default_watchlist
from pipeline.errors import CatalogueError
from pipeline.models import TagResult


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger.load()


TANF_SPELLINGS = [
    "At Tanf", "al-Tanf", "Al Tanf", "At-Tanf", "al\u2011Tanf", "the Tanf garrison", "al-Tanaf", "التنف",
    "AL-TANF", "al\u2013Tanf", "at\u00a0Tanf", "Al-Tanf's", "Near Near At Tanf", "بالتنف", "attanf",
]
DEIR_SPELLINGS = [
    "Deir ez-Zor", "Deir Ez Zor", "Deir al-Zour", "Deir el-Zour", "Deir Ezzor", "Deirezzor", "Dair al-Zor",
    "Dayr az Zawr", "Dayr Az Zawr", "دير الزور", "Dayz Az Zawr", "Dayr Ar Zawr", "Dawr az Zawr", "Day az Zawr",
    "Dayr as Zawr", "Deir ez\u2011Zor", "DEIR EZ-ZOR", "Deïr ez Zor", "Der-Ezzor", "Deir Ezour", "دير الزّور",
    "بدير الزور", "Deir ez-Zor province", "Dayr az-Zawr Governorate",
]
DEIR_SCOPE = [
    ("al-Mayadin", "al-mayadin"), ("Mayadeen", "al-mayadin"), ("Abu Kamal", "abu-kamal"),
    ("Albu Kamal", "abu-kamal"), ("al-Bukamal", "abu-kamal"), ("Al Bukamal", "abu-kamal"), ("Hajin", "hajin"),
    ("the al-Omar oil field", "al-omar-oil-field"), ("the Conoco plant", "conoco-gas-plant"),
    ("Deir ez-Zor airport", "deir-ez-zor-airbase"), ("الميادين", "al-mayadin"), ("البوكمال", "abu-kamal"),
]
LOOKALIKES = [
    "The Tanforan mall reopened.", "She studied at Stanford.", "Tanfield is in County Durham.",
    "The Deir Yassin massacre of 1948.", "Strikes hit Deir el-Balah in Gaza.", "Deir Hafer lies east of Aleppo.",
    "Deir al-Qamar is in Mount Lebanon.", "The Az-Zour power station in Kuwait.", "Az-Zour, Kuwait", "the deir",
    "Deir", "States cut TANF benefits.", "Tanf", "Zor", "Stanfords and Tanforans", "al-Tanforan", "Deirezzorian",
    "Al Mayadeen TV reported; in comments to al-Mayadeen he said more.", "Near Waleed, one strike.",
    "Near Al Qaim, an airstrike.", "The Middle Euphrates River Valley", "Palmyra and Sukhna",
    "the border region", "Deir Hafir", "Dayr Hafir", "Abu, Kamal said", "Deir. Ez Zor", "Dayr. Az Zawr", "Dayz, Az Zawr",
]


@pytest.mark.parametrize("spelling", TANF_SPELLINGS)
def test_every_tanf_spelling_fires_al_tanf(tagger: Tagger, spelling: str) -> None:
    text = f"Fighting near {spelling} in Syria on Monday."
    result = tagger.tag(text)
    assert "al-tanf" in result.topic_ids, spelling
    assert "deir-ez-zor" not in result.topic_ids


@pytest.mark.parametrize("spelling", DEIR_SPELLINGS)
def test_every_deir_spelling_fires_deir_ez_zor(tagger: Tagger, spelling: str) -> None:
    result = tagger.tag(f"Near {spelling}, one strike hit a checkpoint.")
    assert result.topic_ids == ["deir-ez-zor"], spelling


@pytest.mark.parametrize(("text", "entity"), DEIR_SCOPE)
def test_places_inside_the_governorate_fire_by_scope(tagger: Tagger, text: str, entity: str) -> None:
    result = tagger.tag(f"Clashes were reported in {text} on Sunday.")
    topic = next(t for t in result.topics if t.id == "deir-ez-zor")
    assert {r.relation for r in topic.reasons} == {"scope"}
    assert topic.reasons[0].entity_id == entity


@pytest.mark.parametrize("text", LOOKALIKES)
def test_lookalikes_fire_nothing(tagger: Tagger, text: str) -> None:
    result = tagger.tag(text)
    assert result.topic_ids == [], (text, [(e.id, [m.text for m in e.mentions]) for e in result.entities])


@pytest.mark.parametrize(
    ("text", "entity", "found"),
    [
        ("SDF fighters advanced in northern Syria.", "syrian-democratic-forces", True),
        ("Japan's SDF sent ships.", "syrian-democratic-forces", False),
        ("sdf files", "syrian-democratic-forces", False),
        ("The SAA garrison held out in Syria.", "syrian-arab-army", True),
        ("SAA flights to Johannesburg resumed.", "syrian-arab-army", False),
        ("Iraqi PMU militias crossed the border.", "popular-mobilization-units", True),
        ("The PMU regulates voltage.", "popular-mobilization-units", False),
        ("The Tanf garrison is isolated.", "al-tanf", True),
        ("Tanf in the desert of Syria", "al-tanf", True),
        ("TANF offices near the border", "al-tanf", False),
        ("US troops", "united-states", True),
        ("give us troops", "united-states", False),
        ("Militants from the Syrian town of Dhiban near Deir ez-Zor", "dhiban", True),
        ("Dhiban in Jordan", "dhiban", False),
    ],
)
def test_short_aliases_need_context(tagger: Tagger, text: str, entity: str, found: bool) -> None:
    ids = {e.id for e in tagger.tag(text).entities}
    assert (entity in ids) is found


def test_offsets_point_into_the_original_title_and_text(tagger: Tagger) -> None:
    title = "Standoff at al\u2011Tanf"
    text = "Convoys   moved from Deïr\u00a0ez\u2011Zor toward التنـف, then to Abu  Kamal."
    result = tagger.tag(text, title)
    mentions = [m for e in result.entities for m in e.mentions]
    assert mentions, "nothing found"
    for m in mentions:
        source = title if m.field == "title" else text
        assert source[m.start:m.end] == m.text
    by_entity = {e.id: e for e in result.entities}
    tanf = by_entity["al-tanf"].mentions
    assert [(m.field, m.text) for m in tanf] == [("title", "al\u2011Tanf"), ("text", "التنـف")]
    assert by_entity["deir-ez-zor"].mentions[0].text == "Deïr\u00a0ez\u2011Zor"
    assert by_entity["abu-kamal"].mentions[0].text == "Abu  Kamal"
    assert by_entity["deir-ez-zor"].governorate == "deir-ez-zor-governorate"
    assert by_entity["deir-ez-zor"].lat == pytest.approx(35.33588)


def test_longest_match_wins(tagger: Tagger) -> None:
    result = tagger.tag("Shelling in Deir ez-Zor province and at the al-Tanf border crossing.")
    ids = [e.id for e in result.entities]
    assert "deir-ez-zor-governorate" in ids and "deir-ez-zor" not in ids
    assert "al-tanf-crossing" in ids and "al-tanf" not in ids


def test_typos_in_long_names_are_tolerated_and_marked(tagger: Tagger) -> None:
    result = tagger.tag("Fighters of Maghawir al-Thawrah and Maghawr al-Thawra trained.")
    (hit,) = [e for e in result.entities if e.id == "maghawir-al-thawra"]
    assert any(m.fuzzy for m in hit.mentions)
    assert not tagger.tag("Tanff").entities  # short names never fuzzy


def test_why_a_topic_fired(tagger: Tagger) -> None:
    text = "Troops left At Tanf for al-Mayadin."
    result = tagger.tag(text)
    tanf = next(t for t in result.topics if t.id == "al-tanf")
    (reason,) = tanf.reasons
    assert (reason.entity_id, reason.relation, reason.variant, reason.text) == ("al-tanf", "core", "at tanf", "At Tanf")
    assert text[reason.start:reason.end] == "At Tanf" and reason.field == "text"
    deir = next(t for t in result.topics if t.id == "deir-ez-zor")
    assert [(r.entity_id, r.relation, r.text) for r in deir.reasons] == [("al-mayadin", "scope", "al-Mayadin")]


def test_related_entities_fire_only_at_the_threshold(tagger: Tagger) -> None:
    one = tagger.tag("Aid reached Rukban camp.")
    assert one.topic_ids == []
    two = tagger.tag("Aid reached Rukban, guarded by Maghawir al-Thawra.")
    (topic,) = two.topics
    assert topic.id == "al-tanf"
    assert {r.relation for r in topic.reasons} == {"related"}
    assert {r.entity_id for r in topic.reasons} == {"rukban", "maghawir-al-thawra"}


def test_result_round_trips_and_pickles(tagger: Tagger) -> None:
    result = tagger.tag("al-Tanf and Deir ez-Zor", "Hajin")
    assert TagResult.from_dict(result.to_dict()) == result
    clone = pickle.loads(pickle.dumps(tagger))
    assert clone.tag("al-Tanf and Deir ez-Zor", "Hajin") == result


def test_thread_safe(tagger: Tagger) -> None:
    texts = [f"Report {i}: al-Tanf, Deir Ezzor and Abu Kamal; SDF in Syria." for i in range(40)]
    expected = [tagger.tag(t) for t in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(tagger.tag, texts)) == expected


def test_custom_watchlist_and_unknown_entity() -> None:
    wl = Watchlist.model_validate({"topics": [{"id": "hajin-watch", "core": ["hajin"]}]})
    tagger = Tagger.load(watchlist=wl)
    assert tagger.tag("Hajin fell.").topic_ids == ["hajin-watch"]
    bad = Watchlist.model_validate({"topics": [{"id": "x", "core": ["atlantis"]}]})
    with pytest.raises(CatalogueError, match="atlantis"):
        Tagger.load(watchlist=bad)


def test_default_watchlist_has_the_two_topics() -> None:
    wl = load_default_watchlist()
    assert [t.id for t in wl.topics] == ["al-tanf", "deir-ez-zor"]
    # only placeholder recipients in reserved domains (RFC 2606) are shipped, never a real address
    assert all(addr.rsplit("@", 1)[-1] in {"example.org", "example.com", "example.net"}
               for t in wl.topics for addr in t.email)


@pytest.mark.shared
def test_catalogue_seed_claims_hold(tagger: Tagger, shared_dir: Path) -> None:
    """Every entity that claims a seed document is found in it, and the seed topics are right."""
    seeds = {p.stem: p.read_text(encoding="utf-8") for p in (shared_dir / "seeds").glob("*.txt")}
    found = {sid: {e.id for e in tagger.tag(text).entities} for sid, text in seeds.items()}
    for entity in tagger.catalogue.entities.values():
        for sid in entity.seeds:
            assert sid in seeds, f"{entity.id}: unknown seed {sid}"
            assert entity.id in found[sid], f"{entity.id} claims seed {sid} but is not found there"
    topics = {sid[:3]: set(tagger.tag(text).topic_ids) for sid, text in seeds.items()}
    assert topics == {"000": {"al-tanf"}, "001": {"al-tanf"}, "002": {"al-tanf", "deir-ez-zor"},
                      "003": {"al-tanf", "deir-ez-zor"}, "004": set()}


def test_project_watchlist_validates_with_the_config_loader(env: dict[str, str]) -> None:
    from pipeline.config import load_settings, load_watchlist

    wl = load_watchlist(load_settings())
    tanf = wl.topic("al-tanf")
    assert tanf.core and tanf.related and tanf.related_threshold == 2
    assert wl.topic("deir-ez-zor").scope == ["deir-ez-zor-governorate"]
    Tagger.load(watchlist=wl)  # every entity id it names exists in the catalogue
