"""The sample newsroom's content: three fictional outlets and their stories.

Every word here was written for newswatch (fiction in a realistic register; people quoted
by name are invented). The stories are built to exercise the pipeline:

- topical stories naming al-Tanf / Deir ez-Zor under different spellings ("At Tanf",
  "al-Tanf", "Deir ez-Zor", "Deir al-Zour", "Dayr az Zawr"), one naming only towns of the
  Deir ez-Zor governorate (al-Mayadin, Abu Kamal) and one naming only Rukban and Maghawir
  al-Thawra (related entities of al-Tanf);
- look-alikes that must not fire ("Stanford", "Tanforan") and generic world news;
- a syndicated copy of ``levant/coalition-reinforces-at-tanf`` on Gulf Ledger whose
  ``rel=canonical`` points at the original (cross-host, so the extractor ignores it);
- a section index page (``og:type=website``, mostly links) listed in a feed;
- a feed item whose page does not exist (404).

Bodies are paragraphs separated by blank lines; lines inside a paragraph are joined.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Site", "Story", "SITES", "STORIES", "BROKEN_LINKS", "stories_of"]


@dataclass(frozen=True)
class Site:
    key: str
    name: str
    tagline: str
    feed_path: str
    feed_format: str  # "rss" or "atom"
    encoding: str = "utf-8"
    sections: tuple[str, ...] = ("World", "Middle East", "Business", "Science")


@dataclass(frozen=True)
class Story:
    site: str
    path: str
    title: str
    author: str
    published: str  # ISO 8601 UTC
    section: str
    summary: str
    body: str
    canonical_of: str | None = None  # "site:path" of the original, for a syndicated copy
    tags: tuple[str, ...] = field(default_factory=tuple)

    def paragraphs(self) -> list[str]:
        return [" ".join(line.strip() for line in block.splitlines() if line.strip())
                for block in self.body.strip().split("\n\n") if block.strip()]


SITES: tuple[Site, ...] = (
    Site("levant", "The Levant Observer", "Reporting from the eastern Mediterranean since 1998", "/feed.xml", "rss"),
    Site("desertwire", "Desert Wire", "Independent news from the Syrian and Iraqi deserts", "/atom.xml", "atom"),
    Site("gulfledger", "Gulf Ledger", "Markets, politics and people of the Gulf", "/rss.xml", "rss",
         encoding="windows-1252"),
)

_AT_TANF = """
The US-led coalition has moved additional artillery and several dozen troops to its garrison at At Tanf, a
small outpost on the Syrian side of the border crossing with Iraq, after pro-government militias advanced to
within a few kilometres of the base last week, according to two coalition officials.

The reinforcement follows a tense standoff in the open desert south-east of the town of Palmyra, where
coalition aircraft struck a column of vehicles that officials said had ignored repeated warnings to turn
back. The officials, who spoke on condition that they not be named because they were not authorised to
discuss troop movements, described the new deployment as defensive and temporary.

At Tanf sits on the main highway between Damascus and Baghdad, near the point where the borders of Syria,
Iraq and Jordan meet. Coalition special forces have used the garrison since early 2016 to train and advise
local Syrian fighters who are battling the Islamic State group further north along the Euphrates valley.
The base is surrounded by a declared "deconfliction zone" with a radius of 55 kilometres, which Russian and
coalition commanders agreed to respect through a military hotline.

That arrangement has come under strain. Government forces and allied militias, some of them backed by
Iran, have pushed east across the desert in recent weeks in what analysts describe as a race to secure the
border before the Islamic State group collapses in the region. Control of the crossing would open an
overland route from Iraq into Syria, a prize both Damascus and Tehran have long sought.

"Nobody here wants a fight with anyone other than the Islamic State group," said Major Ellen Cartwright, a
coalition spokeswoman reached by telephone. "But we will defend ourselves and our partners if we are
threatened, and we have made that very clear through the channels we have."

Residents of the nearby displacement camps said the sound of aircraft had become constant. Aid workers
warned that any escalation around the garrison would cut the few supply routes that reach tens of
thousands of people stranded in the desert, many of whom fled fighting in Homs and Raqqa provinces.
"""

_DEIR_EZ_ZOR = """
Syrian government troops broke a siege of nearly three years around the eastern city of Deir ez-Zor on
Tuesday, linking up with soldiers who had held out in a government-controlled enclave surrounded by
Islamic State fighters since 2014, state media and a monitoring group reported.

Armoured columns that had advanced for weeks across the desert from the west reached the edge of a
military base on the city's western outskirts in the early afternoon. Footage broadcast on state
television showed soldiers embracing and firing into the air as vehicles rolled past shattered
buildings along the main road.

Around 90,000 civilians are believed to have lived inside the besieged districts, depending for much of
that time on food and medicine dropped by parachute from aircraft flying at high altitude. Aid agencies
have described acute shortages of fuel, clean water and basic medicines, and doctors inside the enclave
said they had been performing operations by torchlight.

The Islamic State group still holds large parts of the city, including neighbourhoods along the
Euphrates, and much of the surrounding province, which stretches to the Iraqi border and contains most of
Syria's oil fields. Military analysts said the next phase of the fight would likely be slower and more
costly, with the group's fighters entrenched in dense urban terrain.

"Breaking the siege matters enormously for the people who were trapped, but it is not the end of the
battle for Deir ez-Zor," said Hana Mourad, a researcher who follows the conflict in eastern Syria for a
policy institute in Beirut. "The question now is who reaches the rest of the river valley first."

That question hangs over a parallel offensive by the US-backed Syrian Democratic Forces, which have been
advancing south from Hasakah province on the eastern bank of the Euphrates. Coalition and Russian
officials have held talks to keep the two campaigns apart, but diplomats say the line dividing them
remains vague in places.

Relief organisations said on Wednesday they were preparing convoys to enter the city by road for the
first time since the siege began, but warned that the route remained exposed to attack and littered with
explosives left behind by retreating fighters.
"""

_STANFORD = """
A team of hydrologists from Stanford University has produced the most detailed map yet of the ancient
groundwater lying beneath Jordan's eastern desert, a finding that could reshape how one of the world's
most water-scarce countries plans for the coming decades.

The researchers combined three decades of satellite gravity measurements with records from more than
four hundred wells, some drilled by oil explorers in the 1960s, to estimate how much water the deep
sandstone aquifers hold and how quickly they are being drained. Their study, published on Monday in a
leading earth sciences journal, concludes that the aquifers are being pumped roughly twice as fast as
they are refilled.

Much of the water is fossil groundwater, rain that fell thousands of years ago when the region was far
wetter than it is today. Once drawn down, it will not return on any timescale that matters to farmers
or city planners. "You can think of it as a savings account that has stopped receiving deposits," said
Dr. Miriam Olabi, the study's lead author. "The balance is still large, but the withdrawals are
accelerating."

Jordan receives less than a hundred cubic metres of renewable water per person each year, a fraction of
the threshold that hydrologists use to define absolute scarcity. The arrival of hundreds of thousands of
refugees since 2011 has added to the strain, as have irrigated farms in the highlands that grow
vegetables for export.

The Stanford team found that the steepest declines are concentrated around a handful of large well
fields that supply the capital, Amman, through a long pipeline. In some of those areas the water table
has dropped by more than a metre a year, forcing operators to drill deeper wells and pay more for the
electricity needed to lift the water to the surface.

The authors say the map could help officials decide where pumping can continue and where it should be
reduced. They also call for more investment in desalination on the Red Sea coast and in repairing leaky
municipal pipes, which lose close to half of the water they carry before it reaches households. Several
government agencies have asked for the underlying data, the university said.
"""

_BEIRUT_PORT = """
Container traffic through the port of Beirut rose for a third consecutive quarter, lifted by
transhipment cargo bound for Iraq and the Gulf and by a recovery in imports of building materials, the
port authority said on Thursday.

The port handled just over 330,000 standard containers between July and September, an increase of
about eight percent on the same period last year. Transhipment, in which containers are unloaded from
large ocean vessels and moved onto smaller ships for other regional ports, accounted for roughly a
third of the total.

Port officials credited the expansion of a container terminal completed two years ago and new
agreements with shipping lines that now call at Beirut directly rather than through ports in Egypt or
Cyprus. "The lines follow the cargo, and the cargo is coming back," said Karim Haddad, the terminal's
commercial director. "We are seeing steady demand from importers who had paused orders during the
worst of the uncertainty."

Economists cautioned that the figures, while encouraging, come from a low base. Lebanon's economy has
grown only slowly for several years, weighed down by the war in neighbouring Syria, a large public debt
and a political system that has struggled to agree on budgets. Imports still far outweigh exports,
leaving the country dependent on deposits from Lebanese living abroad to finance the gap.

Traders said congestion remained a problem at peak times, with lorries queuing for hours on the
approach roads to collect containers. The port authority said it was testing an appointment system
that would let hauliers book slots in advance, and that customs inspections would move to a new
scanning facility early next year.

Shipping agents also pointed to rising insurance costs and to competition from ports in Turkey and
Egypt that are investing heavily in new berths and cranes. The port authority said it expected growth
to slow in the final quarter of the year as seasonal demand eased, but forecast that annual volumes
would still reach a record.
"""

_AL_TANF_DRONE = """
A coalition warplane shot down an armed drone on Tuesday after it dropped a munition near a patrol of
US-backed Syrian fighters outside the al-Tanf garrison, the second such incident in less than two weeks,
a coalition statement said.

The drone, which the statement described as similar in size to an American Predator, was flying toward
the patrol inside the agreed deconfliction zone around al-Tanf when it was engaged. No coalition or
partner forces were hurt, the statement said, and the munition did not explode.

Coalition officials said the drone had been launched by pro-government forces operating in the desert
to the north-east, though they stopped short of naming the country that supplied it. The garrison,
which hosts coalition trainers and the Syrian fighters they advise, lies on the main highway linking
Damascus with Baghdad.

The shoot-down adds to a run of confrontations in the area. Earlier this month coalition aircraft
struck a convoy of militia vehicles that had moved into the zone, and commanders have since reinforced
the base with additional rocket artillery. Military officials in Moscow have called the coalition's
presence at al-Tanf illegal and said the zone has no basis under international law.

Analysts in the region said the pattern suggested each side was testing the other's limits rather than
seeking a wider clash. "Every incident is a message," said Tariq Ansari, a security consultant based in
Amman who follows the border area closely. "The drone is a way of saying the desert is not empty, and
the shoot-down is the reply."

The stakes are high for both camps. For Damascus and its allies, the highway is the shortest land
route to Iraq. For the coalition, the garrison is a base from which to watch the border and to support
operations against the Islamic State group further north, and a place where it has invested two years
of training.

A spokesman for the coalition said the hotline with Russian officers remained in use and had been used
on Tuesday to relay warnings before the drone was engaged. He said the coalition did not seek conflict
with any party in Syria besides the Islamic State group, but would not hesitate to defend itself.
"""

_MAYADIN = """
Thousands of families have fled the town of al-Mayadin in eastern Syria in recent days as government
forces and their allies pushed down the Euphrates valley toward one of the last urban strongholds held
by the Islamic State group, residents and aid workers said.

People leaving the town described heavy air strikes on the main market and on roads leading out toward
the river, where some families tried to cross in small boats to reach villages on the eastern bank.
Others travelled south in pick-up trucks and on foot toward desert areas where relatives had set up
tents, carrying little more than blankets and water.

"We left with the clothes we were wearing," said a teacher who reached a village on the far bank on
Sunday and asked to be identified only by his first name, Ahmad. "There was no bread for three days and
the bombing did not stop at night. Nobody knows who is coming next, so everybody is leaving."

Al-Mayadin became an important base for the group after it lost much of its territory further west,
and residents said many of its commanders and their families had moved there last year. Military
analysts said its capture would leave Abu Kamal, a border town on the road to Iraq, as the group's
last significant urban holding in the valley.

The United Nations humanitarian office said it had received reports of at least twenty civilians killed
in the fighting over the past week and warned that those fleeing faced mines, checkpoints and the risk
of being caught between rival forces. Aid groups have almost no access to the area, and information is
difficult to verify.

In Abu Kamal, meanwhile, residents reached by messaging app described long queues for fuel and rising
prices for flour as traders stopped bringing goods along the roads. Several said they were considering
leaving for Iraq, although the border has been closed for most of the past two years.

Aid agencies said they were preparing food and medical supplies for the displaced but needed guarantees
of safe passage before convoys could move. "The needs are enormous and the access is close to zero," one
aid official said.
"""

_TANFORAN = """
More than a hundred people gathered in San Bruno on Saturday to mark the anniversary of the last race
meeting at Tanforan, the Bay Area racetrack that drew crowds of tens of thousands for much of the
twentieth century before it was torn down to make way for a shopping centre.

The event, organised by the local historical society, brought together former jockeys, stable hands,
track workers and their children, many of whom had not seen each other in decades. Old programmes,
betting slips and photographs were laid out on long tables, and a retired trainer gave a short talk on
the track's most celebrated horses.

Tanforan opened in 1899 and for many years was one of the most important racing venues on the West
Coast. It hosted early aviation shows, drew celebrities from Hollywood and, during the Second World War,
was used as an assembly centre where Japanese American families from the Bay Area were held in
converted horse stalls before being sent to internment camps further inland.

Speakers at Saturday's gathering did not shy away from that history. "This place holds memories of
great joy and of great injustice, and we owe it to everyone who passed through here to remember both,"
said Linda Okamoto, whose parents were held at the site as teenagers. A plaque acknowledging the
assembly centre was unveiled near the shopping centre's entrance several years ago.

The racetrack closed in the early 1960s after a fire and the rising value of land near the airport
made the site more attractive for development. The shopping centre that replaced it has itself been
remodelled several times and now includes a cinema, restaurants and a public library branch.

Organisers said they hoped to collect oral histories from those who worked at the track while they
still could. Several attendees brought recordings and letters to be scanned for an archive that the
historical society plans to put online next year, alongside maps of the track and its stables.
"""

_ICELAND = """
Iceland's fisheries ministry has cut next season's cod quota by six percent after scientists reported
a drop in the number of young fish entering the stock, a decision that fishing companies warned would
cost jobs in coastal towns.

The marine research institute said its autumn survey had found fewer two- and three-year-old cod than
expected, probably because of warmer water temperatures that affected the survival of eggs and larvae.
The institute stressed that the overall stock remained in good condition after two decades of careful
management but said a precautionary cut was justified.

Fishing is one of the pillars of Iceland's economy, along with tourism and aluminium smelting, and cod
is its most valuable species. Companies receive a fixed share of the total allowable catch each year,
a system credited with rebuilding stocks that had collapsed in earlier decades but criticised for
concentrating ownership in the hands of a few large firms.

"We accept the science, but people need to understand what this means in the harbours," said Jon
Sigurdsson, who heads an association of small-boat owners in the Westfjords. "For some families a cut
like this is the difference between a good year and having to sell the boat."

Exporters said prices for cod had been firm in European markets, which could soften the impact on
revenues. Britain remains one of the largest buyers of Icelandic fish, and traders said demand from
restaurants and supermarkets had held up despite the weaker pound.

The ministry also raised quotas for haddock and saithe, reflecting stronger stocks of both species, and
said it would review the cod decision if a winter survey showed a better picture. Environmental groups
welcomed the cut and called for closer monitoring of how warming seas are shifting where fish spawn and
feed around the island.

In the harbour towns themselves, the reaction was mixed. Processing plants that depend on a steady supply
of cod said they would look for more haddock to keep their lines running through the winter, while some
skippers said they would lay up their boats for part of the season rather than fish at a loss. Local
councils asked the government to speed up a promised fund to help small communities diversify, pointing
to fish farming, tourism and a growing number of remote workers who have moved to the fjords.
"""

_DAYR_AZ_ZAWR = """
Coalition aircraft carried out a series of strikes near Dayr az Zawr on Saturday that the coalition
later said may have hit Syrian government forces by mistake, prompting an emergency meeting of the
United Nations Security Council at Russia's request.

In a statement, coalition officials said the aircraft had been targeting what they believed were
Islamic State fighting positions on hills south of the city's airport and had halted the attack as
soon as Russian officers warned through the military hotline that government troops were in the area.
The statement expressed regret for any unintended loss of life.

Russian officials said dozens of Syrian soldiers had been killed and that Islamic State fighters had
advanced on the positions shortly after the strikes. They accused Washington of endangering a fragile
ceasefire agreement that the two powers had announced a week earlier, which was meant to lead to
joint operations against extremist groups.

The airport outside Dayr az Zawr is the main lifeline for a government-held enclave that has been
surrounded by Islamic State fighters for more than two years. Supplies reach the enclave almost
entirely by air, and the loss of the hills overlooking the runway would make landings far more
dangerous.

Diplomats at the Security Council session traded accusations for more than an hour. Western delegates
said the meeting was a distraction from government attacks on civilians in Aleppo, while the Russian
envoy demanded a full account of how the targets had been chosen. The coalition said it would review
the incident.

Analysts said the episode showed the risks of two air campaigns operating in the same skies with only
limited coordination. "When both sides are flying over the same desert with different maps, mistakes
like this are almost built in," said Paulo Ferreira, a former air force officer who now teaches at a
university in Lisbon — the Universidade de Lisboa. He said better sharing of information about ground forces would be essential if
any joint effort against the group were ever to work.

The ceasefire, already shaken by violations on several fronts, collapsed days later.
"""

_RUKBAN = """
Food deliveries to the Rukban camp on Syria's south-eastern border have stalled for a second month,
leaving more than forty thousand people in the desert settlement dependent on smugglers and on a
handful of traders who charge prices few can afford, residents and aid workers said.

The camp grew up in a strip of no man’s land between two sand berms along the frontier with Jordan,
where families fleeing fighting in central and eastern Syria gathered in the hope of crossing. Jordan
closed the border after a car bomb attack on a military post in 2016, and since then aid has arrived
only sporadically, sometimes lifted over the berm by crane.

Residents described tents patched with plastic sheeting, a single clinic with no doctor, and children
suffering from diarrhoea in the summer heat. “Bread is a luxury now,” said a mother of four reached by
messaging app. “We drink water that comes by truck, and when the trucks do not come, we wait.”

Security in the area is provided in part by Maghawir al-Thawra, a Syrian opposition faction trained and
equipped by the US-led coalition, whose fighters patrol the surrounding desert against Islamic State
cells. A commander of the group said his men escorted the water trucks and had arrested several people
accused of planning attacks on the camp, but that they could not feed its population.

Aid agencies say negotiations over a regular convoy route have become entangled in wider disputes
between the parties to the conflict. Government officials in Damascus have insisted that deliveries
should come from inside Syria, while Jordanian officials say the camp is a Syrian matter and that
their border will stay closed for security reasons.

A United Nations official said plans were being drawn up for a large delivery before winter, when
temperatures in the desert fall below freezing at night. The official warned that without a lasting
agreement, the camp would remain dependent on emergency operations that cannot meet its needs.

Residents said many families would return home if they could be sure of their safety, but that few
trusted the guarantees on offer.
"""

_DEIR_AL_ZOUR = """
Residents of Deir al-Zour have begun returning to neighbourhoods that were front lines for most of the
past three years, clearing rubble from their doorways and searching for what remains of their homes as
electricity and water slowly return to parts of the city.

Officials said water pumping stations along the river had resumed partial operation this week, and that
engineers were repairing power lines that feed the city's eastern districts. Bakeries in several
neighbourhoods reopened after flour deliveries arrived by road, a route that was closed for the duration
of the siege.

The scale of the damage is enormous. Entire streets in the old commercial quarter have been reduced to
concrete and twisted steel, and the city's famous suspension bridge over the Euphrates, a landmark for
generations, lies collapsed in the water after it was destroyed in fighting several years ago.

“We came back to see the house, and there is no house,” said Samir, a shopkeeper who returned from a
village outside the city with his two sons. "But the neighbours are coming back too, so we will start
again. Where else would we go?”

Demining teams have marked hundreds of sites with red paint and warned residents not to enter damaged
buildings until they have been checked. Doctors at the city's main hospital said they were treating
injuries from explosions almost every day, many of them among children.

Aid groups said the needs far outstripped what they could provide. Schools remain closed, most clinics
lack staff and equipment, and many families have no income after years of displacement. The United
Nations said it was scaling up food distributions but appealed for more funding for the province,
where it said more than half a million people needed assistance.

Local officials said they hoped to reopen the city's university by spring, and that a committee was
assessing which public buildings could be repaired and which would have to be rebuilt from scratch.
Returning residents said reconstruction would take years, and that many of those who left would not
come back.
"""

_SHIPPING = """
Freight rates for container ships sailing between Asia and the Gulf eased for a fourth week as a wave of
newly built vessels entered service and demand for imports of consumer goods cooled after a busy summer
season, brokers said.

The cost of shipping a standard forty-foot container from Shanghai to Jebel Ali fell by about five
percent over the week, according to a widely watched freight index, and is now roughly a fifth below its
level at the start of the year. Rates on routes to Dammam and to ports on the Red Sea followed a similar
pattern.

Shipping lines have taken delivery of dozens of large vessels ordered several years ago, when
expectations for trade growth were higher. Some carriers have responded by cancelling sailings or
slowing ships down to save fuel, but brokers said those measures had not yet been enough to balance
supply and demand.

"There is simply more space on the water than there is cargo to fill it," said Rania Khoury, a freight
analyst at a consultancy in Dubai. "Importers are in a strong position to negotiate, and many of them
are locking in contracts for next year at lower prices."

Retailers and manufacturers in the Gulf said the lower costs were welcome after a period of volatile
rates that made planning difficult. Several large importers said they had shifted some shipments from
air freight back to sea because of the savings, particularly for electronics and household goods.

The weaker rates are less welcome for port operators and carriers, whose profits depend on volumes and
prices holding up. Analysts expect further consolidation in the industry as smaller lines struggle to
compete, and said alliances between the largest carriers would play a bigger role in deciding which
ports ships call at.

Brokers expect rates to stabilise early next year, when Chinese factories close for the Lunar New Year
holiday and carriers traditionally reduce capacity on the busiest routes.
"""

STORIES: tuple[Story, ...] = (
    Story("levant", "/2017/06/09/coalition-reinforces-at-tanf/",
          "Coalition reinforces At Tanf garrison after desert standoff", "Nadia Haddad",
          "2017-06-09T14:20:00+00:00", "Middle East",
          "Extra artillery and troops arrive at the border outpost as militias close in.", _AT_TANF,
          tags=("syria", "coalition")),
    Story("levant", "/2017/09/06/siege-of-deir-ez-zor-broken/",
          "Siege of Deir ez-Zor broken as army column reaches city", "Omar Saleh",
          "2017-09-06T11:05:00+00:00", "Middle East",
          "Government troops link up with an enclave surrounded for nearly three years.", _DEIR_EZ_ZOR,
          tags=("syria",)),
    Story("levant", "/2017/05/22/stanford-maps-jordan-aquifers/",
          "Stanford hydrologists map the ancient water beneath Jordan's desert", "Claire Dubois",
          "2017-05-22T08:30:00+00:00", "Science",
          "A new study finds deep aquifers drained twice as fast as they refill.", _STANFORD,
          tags=("science", "water")),
    Story("levant", "/2017/10/12/beirut-port-traffic-climbs/",
          "Beirut port container traffic climbs for a third quarter", "Karim Nassar",
          "2017-10-12T09:45:00+00:00", "Business",
          "Transhipment to Iraq and the Gulf lifts volumes.", _BEIRUT_PORT,
          tags=("business",)),
    Story("desertwire", "/news/2017/06/20/drone-downed-near-al-tanf",
          "Drone downed near al-Tanf as highway tensions rise", "Sami Khalil",
          "2017-06-20T17:40:00+00:00", "Middle East",
          "A coalition jet shoots down an armed drone inside the deconfliction zone.", _AL_TANF_DRONE),
    Story("desertwire", "/news/2017/10/14/families-flee-al-mayadin",
          "Families flee al-Mayadin as offensive moves down the Euphrates", "Layla Hamdan",
          "2017-10-14T06:15:00+00:00", "Middle East",
          "Residents describe air strikes and river crossings by night.", _MAYADIN),
    Story("desertwire", "/news/2017/07/02/tanforan-racetrack-remembered",
          "San Bruno remembers the last race at Tanforan", "Megan Ellis",
          "2017-07-02T19:00:00+00:00", "World",
          "Former jockeys and families gather to recall a vanished Bay Area racetrack.", _TANFORAN),
    Story("desertwire", "/news/2017/11/28/iceland-cuts-cod-quota",
          "Iceland cuts cod quota as young fish grow scarce", "Ingrid Larsen",
          "2017-11-28T10:10:00+00:00", "World",
          "Scientists report fewer young cod; coastal towns brace for job losses.", _ICELAND),
    Story("gulfledger", "/politics/2016/09/18/strikes-near-dayr-az-zawr",
          "Coalition strikes near Dayr az Zawr spark Security Council clash", "Daniel Moreau",
          "2016-09-18T21:30:00+00:00", "Middle East",
          "The coalition says its aircraft may have hit Syrian troops by mistake.", _DAYR_AZ_ZAWR),
    Story("gulfledger", "/politics/2017/07/25/aid-stalls-at-rukban",
          "Aid stalls at Rukban as the desert camp swells", "Yasmin Aziz",
          "2017-07-25T07:55:00+00:00", "Middle East",
          "Forty thousand people wait for food between two sand berms.", _RUKBAN),
    Story("gulfledger", "/politics/2017/11/03/deir-al-zour-residents-return",
          "Deir al-Zour residents return to ruined streets", "Yasmin Aziz",
          "2017-11-03T12:00:00+00:00", "Middle East",
          "Water and power come back slowly to a city scarred by siege.", _DEIR_AL_ZOUR),
    Story("gulfledger", "/markets/2017/10/30/container-rates-ease",
          "Container rates to the Gulf ease as new ships arrive", "Rashid Al-Amin",
          "2017-10-30T15:20:00+00:00", "Business",
          "Brokers say importers hold the upper hand in contract talks.", _SHIPPING),
    Story("gulfledger", "/wire/2017/06/10/coalition-reinforces-at-tanf-garrison/",
          "Coalition reinforces At Tanf garrison after desert standoff", "Nadia Haddad",
          "2017-06-10T06:00:00+00:00", "Middle East",
          "Extra artillery and troops arrive at the border outpost. (Syndicated from The Levant Observer.)",
          _AT_TANF, canonical_of="levant:/2017/06/09/coalition-reinforces-at-tanf/"),
)

#: Feed items pointing at pages that do not exist (answered 404), per site key.
BROKEN_LINKS: dict[str, tuple[str, str, str]] = {
    "levant": ("/2017/06/12/border-crossing-reopens/", "Border crossing reopens to lorries",
               "2017-06-12T10:00:00+00:00"),
}

#: The section index page listed in a feed: (site key, path, title).
SECTION_INDEX = ("levant", "/sections/middle-east/", "Middle East: latest from The Levant Observer")


def stories_of(site_key: str) -> list[Story]:
    return [s for s in STORIES if s.site == site_key]
