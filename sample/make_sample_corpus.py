"""Generate the project's synthetic sample corpus: JSON Lines of {"id", "text", "label"}.

Every document is written by this script from sentence templates, per-class
vocabularies and a shared neutral vocabulary, so the corpus holds no third-party
text and the same arguments always give the same bytes.  The four news-style
classes overlap in wording on purpose: many sentences carry no topic words,
some documents mix two topics and a few labels are flipped at random.  A small
classifier therefore learns something real without reaching 100%, which is what
the pipeline's preprocessing, training and scoring stages need to be exercised
end to end on a laptop.

Usage:
    python sample/make_sample_corpus.py [--output sample/corpus.jsonl] [--seed 13] [--num-docs 2000]
                                        [--id-prefix sample-]

`sample/holdout.jsonl`, the documents `./run_pipeline.sh` scores, is a second draw that no
training run sees: `--output sample/holdout.jsonl --seed 14 --num-docs 500 --id-prefix holdout-`.
"""

import argparse
import json
import random
import re
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "corpus.jsonl"
DEFAULT_SEED = 13
DEFAULT_NUM_DOCS = 2000

# Label -> share of the corpus before label noise; mildly imbalanced on purpose.
CLASS_SHARES = (
    ("sports", 0.30),
    ("science", 0.27),
    ("business", 0.23),
    ("entertainment", 0.20),
)

MIN_WORDS = 15
MAX_WORDS = 60
TYPICAL_WORDS = 25  # most common target length; longer documents are rarer
ID_PREFIX = "sample-"
MIN_ID_DIGITS = 5

NEUTRAL_SENTENCE_RATE = 0.3  # sentences with no topic words at all
STRAY_TOPIC_RATE = 0.04  # a topical sentence borrowing another class's words
AMBIGUOUS_DOC_RATE = 0.15  # documents that mix two topics
SECOND_TOPIC_SHARE = (0.25, 0.5)  # share of an ambiguous doc's topical sentences
LABEL_NOISE_RATE = 0.05
CURLY_QUOTE_RATE = 0.1
EN_DASH_RATE = 0.25
ACCENTED_WORD_RATE = 0.02

SHARED_WORDS = {
    "first": (
        "Anna", "Marcus", "Priya", "Tom", "Grace", "Daniel", "Aisha", "Leo",
        "Hannah", "Omar", "Sofia", "Ben", "Chloe", "Ravi", "Emma", "Jonas",
        "Maya", "Sam", "Ella", "Victor", "Nina", "Kofi", "Laura", "Felix",
        "Ines", "Peter", "Yuki", "Carlos", "Ruth", "Ahmed", "Lena", "Owen",
    ),
    "last": (
        "Hughes", "Patel", "Okafor", "Lindqvist", "Brennan", "Castillo",
        "Novak", "Whitaker", "Adeyemi", "Fischer", "Moreau", "Tanaka", "Doyle",
        "Kowalski", "Reyes", "Sandberg", "Mensah", "Hale", "Romano", "Chen",
        "Baxter", "Olsen", "Kaur", "Delaney", "Ferreira", "Ivanova", "Marsh",
        "Haddad", "Lowe", "Quinn",
    ),
    "city": (
        "Leeds", "Lyon", "Denver", "Osaka", "Nairobi", "Glasgow", "Porto",
        "Toronto", "Hamburg", "Adelaide", "Cork", "Seville", "Austin",
        "Gothenburg", "Accra", "Bristol", "Turin", "Calgary", "Rotterdam",
        "Wellington",
    ),
    "day": (
        "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
        "Sunday",
    ),
    "month": (
        "January", "February", "March", "April", "May", "June", "July",
        "August", "September", "October", "November", "December",
    ),
    "time": (
        "this week", "last month", "earlier this year", "over the weekend",
        "on Friday evening", "in recent months", "since January",
        "late on Tuesday", "this morning", "last year",
    ),
    "official": (
        "a spokesperson", "officials", "local reporters", "the organisers",
        "a source close to the matter", "observers", "a senior official",
        "people familiar with the plans", "a press officer",
    ),
    "n_noun": (
        "plan", "announcement", "decision", "report", "statement", "update",
        "schedule", "proposal", "news", "outcome", "review", "change",
    ),
    "n_nouns": (
        "people", "visitors", "residents", "critics", "supporters", "experts",
        "observers", "commentators", "neighbours", "readers",
    ),
    "n_adj": (
        "surprising", "significant", "modest", "unexpected", "welcome",
        "long-awaited", "disappointing", "encouraging", "important",
        "difficult", "remarkable", "overdue",
    ),
    "n_verb": (
        "announced", "confirmed", "delayed", "discussed", "welcomed",
        "questioned", "postponed", "reviewed", "described", "defended",
    ),
}

# Rarely used spellings, so that only a small share of documents is non-ASCII.
ACCENTED_WORDS = {
    "first": ("Renée", "José", "Zoë", "Jürgen", "Inès"),
    "last": ("Müller", "Gómez", "Lefèvre", "Nuñez", "Brontë"),
    "city": ("Zürich", "Montréal", "Düsseldorf", "Malmö"),
}

TOPIC_WORDS = {
    "sports": {
        "group": (
            "the club", "the home side", "the visitors", "the national team",
            "the Rovers", "City", "the squad", "the defending champions",
            "the Falcons", "the under-21 side", "the relay team",
        ),
        "person": (
            "the coach", "the captain", "the striker", "the goalkeeper",
            "the manager", "the midfielder", "the head coach", "the referee",
            "the sprinter", "the veteran defender", "the team's top scorer",
        ),
        "thing": (
            "the match", "the final", "the season opener", "the derby",
            "the transfer", "the penalty", "the second half", "the comeback",
            "the 2–1 win", "the 3–0 defeat", "the title race", "the season",
            "the record", "the contract",
        ),
        "things": (
            "goals", "points", "injuries", "fans", "tickets", "medals",
            "rebounds", "penalties", "wins", "trophies", "matches",
        ),
        "action": (
            "scored twice in the first half", "won on penalties",
            "lost narrowly at home", "trained behind closed doors",
            "qualified for the knockout stage", "signed a new striker",
            "kept a clean sheet", "climbed to third in the table",
            "celebrated a late winner", "defeated their old rivals",
        ),
        "adj": (
            "unbeaten", "injured", "relegated", "attacking", "defensive",
            "top-flight", "world-class", "record-breaking", "athletic",
        ),
        "place": (
            "the stadium", "the pitch", "the training ground", "the track",
            "the locker room", "the court", "the arena",
        ),
        "event": (
            "the championship", "the league", "the tournament", "the cup",
            "the Olympics", "the playoffs", "the world cup", "the marathon",
            "the grand prix",
        ),
    },
    "science": {
        "group": (
            "the research team", "the lab", "the observatory",
            "the university group", "the space agency", "the institute",
            "the physics consortium", "the genetics unit", "the climate team",
        ),
        "person": (
            "the lead author", "the physicist", "the biologist",
            "the astronomer", "the chemist", "the researcher", "the geologist",
            "the study's co-author", "the neuroscientist",
        ),
        "thing": (
            "the experiment", "the study", "the telescope", "the vaccine trial",
            "the probe", "the fossil", "the sample", "the hypothesis",
            "the data set", "the discovery", "the launch", "the trial",
        ),
        "things": (
            "cells", "particles", "samples", "proteins", "genes", "galaxies",
            "molecules", "bacteria", "measurements", "fossils", "neurons",
            "results",
        ),
        "action": (
            "published new findings", "repeated the measurements",
            "sequenced the genome", "detected a faint signal",
            "mapped the sea floor", "observed a distant galaxy",
            "carried out a second round of experiments", "tested the new vaccine",
            "simulated the reaction", "collected fresh samples",
        ),
        "adj": (
            "peer-reviewed", "genetic", "experimental", "molecular", "quantum",
            "microscopic", "climate", "clinical", "orbital",
        ),
        "place": (
            "the laboratory", "the launch site", "the field station",
            "the particle accelerator", "the deep ocean", "the Antarctic",
            "the clean room",
        ),
        "event": (
            "the journal", "the conference", "the symposium", "the mission",
            "the clinical trial", "the field season", "the research programme",
        ),
    },
    "business": {
        "group": (
            "the company", "the bank", "the retailer", "the start-up",
            "the carmaker", "the airline", "the board", "the insurer",
            "the chipmaker", "the holding group",
        ),
        "person": (
            "the chief executive", "the finance director", "the analyst",
            "the chairman", "the founder", "the economist", "the regulator",
            "the investor", "the company's CFO",
        ),
        "thing": (
            "the merger", "the quarterly report", "the share price", "the deal",
            "the acquisition", "the takeover bid", "the profit warning",
            "the contract", "the budget", "the growth forecast", "the launch",
            "the dividend",
        ),
        "things": (
            "profits", "shares", "investors", "sales", "revenues", "costs",
            "jobs", "customers", "orders", "bonds", "exports",
        ),
        "action": (
            "cut its profit forecast", "raised prices again",
            "posted a quarterly loss", "acquired a smaller rival",
            "sold its overseas unit", "announced job cuts",
            "topped market expectations", "raised fresh capital",
            "missed its sales target", "agreed a new supply contract",
        ),
        "adj": (
            "quarterly", "profitable", "annual", "corporate", "fiscal",
            "wholesale", "listed", "inflation-hit", "cost-cutting",
        ),
        "place": (
            "the stock exchange", "the boardroom", "the trading floor",
            "the market", "the factory", "the headquarters", "the warehouse",
        ),
        "event": (
            "the earnings call", "the annual meeting", "the trade fair",
            "the funding round", "the stock market", "the investor day",
        ),
    },
    "entertainment": {
        "group": (
            "the studio", "the band", "the network", "the cast",
            "the streaming service", "the label", "the theatre company",
            "the production team", "the orchestra",
        ),
        "person": (
            "the director", "the singer", "the actor", "the actress",
            "the producer", "the screenwriter", "the lead guitarist",
            "the comedian", "the film's star", "the critic",
        ),
        "thing": (
            "the album", "the film", "the premiere", "the tour", "the sequel",
            "the soundtrack", "the series finale", "the musical", "the trailer",
            "the release", "the record", "the performance", "the season",
            "the deal",
        ),
        "things": (
            "fans", "tickets", "reviews", "episodes", "songs", "viewers",
            "audiences", "nominations", "stars", "concerts", "ratings",
        ),
        "action": (
            "released a new single", "sold out three nights",
            "wrapped filming", "premiered the sequel", "topped the charts",
            "announced a world tour", "recorded a live album",
            "renewed the show for another season", "cast a newcomer in the lead",
            "celebrated a record opening weekend",
        ),
        "adj": (
            "sold-out", "animated", "acclaimed", "box-office", "chart-topping",
            "comedic", "cinematic", "live", "televised",
        ),
        "place": (
            "the festival", "the box office", "the theatre", "the red carpet",
            "the concert hall", "the studio lot", "the charts",
        ),
        "event": (
            "the awards", "the film festival", "the world tour", "the gala",
            "the Oscars", "the music awards", "the premiere night",
        ),
    },
}

# Sentences that carry topic words; every {t_*} slot is filled from one class.
TOPICAL_TEMPLATES = (
    "{t_group} {t_action} {time}, {official} said.",
    "{name}, {t_person} at {t_group}, said {t_thing} was {n_adj}.",
    "{oq}We didn't expect {t_thing} to go this way,{cq} said {name}, {t_person}.",
    "{oq}This is a big moment for {t_group},{cq} {name} told reporters in {city}.",
    "More than {count} people came to {t_place} on {day} to hear about {t_things}.",
    "In {city} on {day}, {t_person} {name} said the team had {t_action}.",
    "{t_group} will return to {t_place} before {t_event} in {month}.",
    "Attention now turns to {t_event}, where {t_group} hopes to build on {t_thing}.",
    "According to {official}, {t_things} rose by {pct} compared with {year}.",
    "{name} has spent {num} years at {t_group} and still talks about {t_thing}.",
    "Few expected {t_thing} to draw so many {t_things}.",
    "Was {t_thing} the turning point for {t_group}?",
    "Critics praised the {t_adj} approach taken by {t_group}.",
    "Between {years}, {t_group} {t_action} more than once.",
    "{t_person} said the focus had shifted to {t_event}.",
    "On {day}, {t_person} {name} confirmed that {t_thing} would go ahead as planned.",
    "{t_things} remain the main concern for {t_group}, {official} said.",
    "The latest figures show {count} {t_things}, up from {num} a year ago.",
    "{oq}{t_things} are the whole story here,{cq} said {name}.",
    "Without {t_thing}, {t_group} would have struggled to reach {t_event}.",
    "{name} was at {t_place} when the news about {t_thing} broke.",
    "Reports from {city} suggest {t_group} {t_action}, a move worth {money}.",
    "It's the {t_adj} side of {t_group} that {n_nouns} remember.",
    "{t_event} in {city} drew a crowd of {count} and plenty of talk about {t_things}!",
)

# Sentences with no topic words: the shared wording every class uses.
NEUTRAL_TEMPLATES = (
    "Officials in {city} said on {day} that more details would follow.",
    "{name} declined to comment when contacted {time}.",
    "The {n_noun} was {n_verb} {time}, according to {official}.",
    "It's not yet clear what the {n_noun} means for {n_nouns} in {city}.",
    "{official} described the {n_noun} as {n_adj}.",
    "Further updates are expected {time}.",
    "The news was {n_adj}, {name} said, but there's still work to do.",
    "Many {n_nouns} in {city} had been waiting for the {n_noun} since {month}.",
    "{name} said the {n_noun} would be reviewed again in {month}.",
    "Some {n_nouns} called it {n_adj}; others weren't so sure.",
    "The {n_noun} comes {num} weeks after a similar move in {city}.",
    "Nobody in {city} seemed surprised.",
    "{name}, who has lived in {city} for {num} years, said it was {n_adj}.",
    "What happens next is anyone's guess.",
    "The details were first reported by a local newspaper in {city} on {day}.",
    "About {count} {n_nouns} attended, {official} said.",
    "{name} won't say more until {month}.",
    "Asked about the {n_noun}, {name} said: {oq}We'll see.{cq}",
    "Both sides are due to meet again in {city} in {month}.",
    "The {n_noun} followed a difficult week for everyone involved.",
)

SLOT_PATTERN = re.compile(r"\{(\w+)\}")
CURLY_QUOTES = ("\u201c", "\u201d")
STRAIGHT_QUOTES = ('"', '"')


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="JSON Lines file to write (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="random seed (default: %(default)s)")
    parser.add_argument("--num-docs", type=int, default=DEFAULT_NUM_DOCS,
                        help="number of documents (default: %(default)s)")
    parser.add_argument("--id-prefix", default=ID_PREFIX,
                        help="prefix of the document ids (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.num_docs < 1:
        parser.error("--num-docs must be at least 1")
    return args


def class_sizes(num_docs):
    """Split num_docs by CLASS_SHARES, giving leftovers to the largest remainders."""
    exact = [(label, share * num_docs) for label, share in CLASS_SHARES]
    sizes = {label: int(amount) for label, amount in exact}
    leftover = num_docs - sum(sizes.values())
    by_remainder = sorted(exact, key=lambda pair: pair[1] - int(pair[1]), reverse=True)
    for label, _ in by_remainder[:leftover]:
        sizes[label] += 1
    return sizes


def planned_labels(num_docs, rng):
    labels = [label for label, size in class_sizes(num_docs).items() for _ in range(size)]
    rng.shuffle(labels)
    return labels


def other_label(label, rng):
    return rng.choice([other for other, _ in CLASS_SHARES if other != label])


def shared_word(slot, rng):
    if slot in ACCENTED_WORDS and rng.random() < ACCENTED_WORD_RATE:
        return rng.choice(ACCENTED_WORDS[slot])
    return rng.choice(SHARED_WORDS[slot])


def generated_value(slot, rng):
    """Values built on the fly rather than picked from a word list."""
    if slot == "name":
        return f"{shared_word('first', rng)} {shared_word('last', rng)}"
    if slot == "num":
        return str(rng.randint(2, 40))
    if slot == "count":
        count = rng.randint(12, 950) if rng.random() < 0.5 else rng.randint(1000, 48000)
        return f"{count:,}"
    if slot == "pct":
        return f"{rng.randint(1, 19)}.{rng.randint(0, 9)}{rng.choice(('%', ' per cent'))}"
    if slot == "year":
        return str(rng.randint(2009, 2024))
    if slot == "years":
        start = rng.randint(2008, 2019)
        separator = "\u2013" if rng.random() < EN_DASH_RATE else " and "
        return f"{start}{separator}{start + rng.randint(2, 5)}"
    if slot == "money":
        currency = rng.choice(("$", "$", "$", "£", "€"))
        if rng.random() < 0.5:
            return f"{currency}{rng.randint(2, 90)}0,000"
        return f"{currency}{rng.randint(1, 9)}.{rng.randint(1, 9)} million"
    raise KeyError(f"unknown template slot: {slot}")


def capitalise_first_letter(sentence):
    for index, char in enumerate(sentence):
        if char.isalpha():
            return sentence[:index] + char.upper() + sentence[index + 1:]
    return sentence


def fill_template(template, topic, rng):
    """Fill every {slot}; t_* slots come from `topic`'s vocabulary, the rest are shared."""
    curly = rng.random() < CURLY_QUOTE_RATE
    open_quote, close_quote = CURLY_QUOTES if curly else STRAIGHT_QUOTES

    def slot_value(match):
        slot = match.group(1)
        if slot == "oq":
            return open_quote
        if slot == "cq":
            return close_quote
        if slot.startswith("t_"):
            return rng.choice(TOPIC_WORDS[topic][slot[2:]])
        if slot in SHARED_WORDS:
            return shared_word(slot, rng)
        return generated_value(slot, rng)

    return capitalise_first_letter(SLOT_PATTERN.sub(slot_value, template))


def sentence_topic(label, second_topic, second_share, rng):
    if second_topic is not None and rng.random() < second_share:
        return second_topic
    if rng.random() < STRAY_TOPIC_RATE:
        return other_label(label, rng)
    return label


def document_text(label, second_topic, second_share, rng):
    """Add sentences until a random target length is reached, never past MAX_WORDS.

    Neutral templates have no t_* slots, so only topical sentences carry class words.
    """
    target_words = int(rng.triangular(MIN_WORDS, MAX_WORDS, TYPICAL_WORDS))
    sentences = []
    word_count = 0
    has_topical_sentence = False
    while word_count < target_words:
        # A neutral sentence may open a document, but the next one must then be topical.
        neutral_allowed = has_topical_sentence or not sentences
        if neutral_allowed and rng.random() < NEUTRAL_SENTENCE_RATE:
            sentence = fill_template(rng.choice(NEUTRAL_TEMPLATES), label, rng)
            is_topical = False
        else:
            topic = sentence_topic(label, second_topic, second_share, rng)
            sentence = fill_template(rng.choice(TOPICAL_TEMPLATES), topic, rng)
            is_topical = True
        sentence_words = len(sentence.split())
        if word_count + sentence_words > MAX_WORDS:
            if word_count >= MIN_WORDS and has_topical_sentence:
                break
            continue
        sentences.append(sentence)
        word_count += sentence_words
        has_topical_sentence = has_topical_sentence or is_topical
    return " ".join(sentences)


def make_document(index, label, id_digits, rng, id_prefix=ID_PREFIX):
    second_topic, second_share = None, 0.0
    if rng.random() < AMBIGUOUS_DOC_RATE:
        second_topic = other_label(label, rng)
        second_share = rng.uniform(*SECOND_TOPIC_SHARE)
    text = document_text(label, second_topic, second_share, rng)
    if rng.random() < LABEL_NOISE_RATE:
        label = other_label(label, rng)
    return {"id": f"{id_prefix}{index:0{id_digits}d}", "text": text, "label": label}


def make_corpus(num_docs, seed, id_prefix=ID_PREFIX):
    rng = random.Random(seed)
    id_digits = max(MIN_ID_DIGITS, len(str(num_docs)))
    labels = planned_labels(num_docs, rng)
    return [
        make_document(index, label, id_digits, rng, id_prefix)
        for index, label in enumerate(labels, start=1)
    ]


def write_jsonl(path, documents):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for document in documents:
            out.write(json.dumps(document, ensure_ascii=False) + "\n")


def label_counts(documents):
    counts = {label: 0 for label, _ in CLASS_SHARES}
    for document in documents:
        counts[document["label"]] += 1
    return counts


def main(argv=None):
    args = parse_args(argv)
    documents = make_corpus(args.num_docs, args.seed, args.id_prefix)
    write_jsonl(args.output, documents)
    per_label = ", ".join(f"{label}={count}" for label, count in label_counts(documents).items())
    print(f"wrote {len(documents)} documents to {args.output} ({per_label})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
