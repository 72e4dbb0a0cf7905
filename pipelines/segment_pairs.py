"""Segment pairs for sentence-order pretraining, cut from one document's pieces (plain Python).

The recipe of ALBERT's `create_pretraining_data.py`, with pairs kept inside their document:

1. the pieces are split into sentences after each piece that ends one (sentences longer than a
   pair can hold are split into consecutive fragments of that length, so no text is thrown away);
2. a target length is drawn per document: max_seq_length - 3 (room for [CLS] and two [SEP]s),
   or, with probability SHORT_SEQUENCE_PROBABILITY, a random shorter one, so the model also sees
   short sequences;
3. sentences are gathered into a chunk until it reaches the target; the chunk is split between
   two of its sentences at a random point (a chunk of one sentence at a random piece inside
   it): A before, B after;
4. the pair is cut to max_seq_length - 3 pieces by removing pieces from the longer segment, from
   its front or its back at random;
5. with probability 1/2, A and B are swapped: sentence_order 1.

Randomness comes from a generator seeded with the document id, so a rerun writes the same pairs.
A document needs at least 2 pieces (one for A, one for B); any document that has them gives at
least one pair, and every pair has at least one piece in each segment.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Sequence

SHORT_SEQUENCE_PROBABILITY = 0.1  # ALBERT's short_seq_prob
SWAP_PROBABILITY = 0.5
MIN_PIECES = 2  # one for each segment
FRAMING_IDS = 3  # [CLS] A [SEP] B [SEP]


@dataclasses.dataclass(frozen=True)
class SegmentPair:
    """One training sequence: `[CLS] first [SEP] second [SEP]` with its segment ids and order label."""

    token_ids: tuple[int, ...]
    segment_ids: tuple[int, ...]  # 0 for [CLS] first [SEP], 1 for second [SEP]
    sentence_order: int  # 0: first precedes second in the document; 1: swapped


def document_rng(document_id: str) -> random.Random:
    """A generator seeded by a stable hash of the document id (the same on every machine and run)."""
    digest = hashlib.blake2b(document_id.encode("utf-8"), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def split_sentences(pieces: Sequence[int], ends_sentence: Sequence[int], max_pieces: int) -> list[list[int]]:
    """Pieces → sentences, each ending after a piece flagged in `ends_sentence` (or at the end);
    a sentence longer than `max_pieces` becomes consecutive fragments of at most that many."""
    if len(pieces) != len(ends_sentence):
        raise ValueError(f"Every piece needs a sentence-end flag. Received: {len(pieces)} pieces, "
                         f"{len(ends_sentence)} flags")
    sentences, start = [], 0
    for i, ends in enumerate(ends_sentence):
        if ends or i == len(pieces) - 1:
            sentence = list(pieces[start: i + 1])
            sentences.extend(sentence[j: j + max_pieces] for j in range(0, len(sentence), max_pieces))
            start = i + 1
    return sentences


def _truncate_pair(first: list[int], second: list[int], max_pieces: int, rng: random.Random) -> None:
    """Cuts pieces off the longer segment, from its front or back at random, until both fit."""
    while len(first) + len(second) > max_pieces:
        longer = first if len(first) > len(second) else second
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def _split_chunk(chunk: list[list[int]], rng: random.Random) -> tuple[list[int], list[int]]:
    """A chunk of sentences → (A, B): split between sentences, or inside a lone sentence."""
    if len(chunk) == 1:
        (sentence,) = chunk
        a_end = rng.randint(1, len(sentence) - 1)
        return sentence[:a_end], sentence[a_end:]
    a_end = rng.randint(1, len(chunk) - 1)
    return ([piece for sentence in chunk[:a_end] for piece in sentence],
            [piece for sentence in chunk[a_end:] for piece in sentence])


def frame_pair(first: Sequence[int], second: Sequence[int], sentence_order: int, cls_id: int, sep_id: int
               ) -> SegmentPair:
    """`[CLS] first [SEP] second [SEP]` and segment ids 0 … 0 1 … 1 (the second [SEP] is segment 1)."""
    return SegmentPair(
        token_ids=(cls_id, *first, sep_id, *second, sep_id),
        segment_ids=(0,) * (len(first) + 2) + (1,) * (len(second) + 1),
        sentence_order=sentence_order,
    )


def document_pairs(pieces: Sequence[int], ends_sentence: Sequence[int], *, max_seq_length: int, cls_id: int,
                   sep_id: int, rng: random.Random) -> list[SegmentPair]:
    """Every segment pair of one document, in document order; [] for fewer than MIN_PIECES pieces."""
    max_pieces = max_seq_length - FRAMING_IDS
    if max_pieces < MIN_PIECES:
        raise ValueError(f"max_seq_length must leave room for [CLS] A [SEP] B [SEP]. "
                         f"Received: max_seq_length={max_seq_length}")
    if len(pieces) < MIN_PIECES:
        return []
    sentences = split_sentences(pieces, ends_sentence, max_pieces)
    target = max_pieces
    if rng.random() < SHORT_SEQUENCE_PROBABILITY:
        target = rng.randint(MIN_PIECES, max_pieces)
    left = len(pieces)  # pieces not yet in a chunk
    pairs, chunk, length = [], [], 0
    for sentence in sentences:
        chunk.append(sentence)
        length += len(sentence)
        left -= len(sentence)
        # Close the chunk at the target, unless too little would be left for one more pair.
        if left == 0 or (length >= target and left >= MIN_PIECES):
            first, second = _split_chunk(chunk, rng)
            _truncate_pair(first, second, max_pieces, rng)
            swapped = int(rng.random() < SWAP_PROBABILITY)
            if swapped:
                first, second = second, first
            pairs.append(frame_pair(first, second, swapped, cls_id, sep_id))
            chunk, length = [], 0
    return pairs
