"""Segment pairs cut from one document (pure functions, no Beam).

Documents here are runs of distinct piece ids (100, 101, ...), so the position of every piece in
its document is its value: order and contiguity can be checked exactly.
"""

from __future__ import annotations

import random

import pytest

from pipelines.segment_pairs import (SHORT_SEQUENCE_PROBABILITY, SegmentPair, document_pairs, document_rng,
                                     frame_pair, split_sentences)

CLS, SEP = 2, 3


def document(sentence_lengths: list[int], first_id: int = 100) -> tuple[list[int], list[int]]:
    """(pieces, ends_sentence) of consecutive ids, a sentence end after each sentence."""
    pieces, ends = [], []
    for length in sentence_lengths:
        pieces.extend(range(first_id + len(pieces), first_id + len(pieces) + length))
        ends.extend([0] * (length - 1) + [1])
    return pieces, ends


def segments(pair: SegmentPair) -> tuple[list[int], list[int]]:
    """(A, B) as written: the pieces of segment 0 and of segment 1, without [CLS]/[SEP]."""
    first = [t for t, s in zip(pair.token_ids, pair.segment_ids) if s == 0][1:-1]
    second = [t for t, s in zip(pair.token_ids, pair.segment_ids) if s == 1][:-1]
    return first, second


def pairs_of(sentence_lengths, max_seq_length=16, seed=0, first_id=100):
    pieces, ends = document(sentence_lengths, first_id)
    return document_pairs(pieces, ends, max_seq_length=max_seq_length, cls_id=CLS, sep_id=SEP,
                          rng=random.Random(seed))


def random_documents(count=300):
    rng = random.Random(3)
    for seed in range(count):
        yield [rng.randint(1, 12) for _ in range(rng.randint(1, 9))], rng.choice([5, 6, 9, 16, 32]), seed


def test_split_sentences_ends_after_each_flagged_piece_and_cuts_overlong_sentences():
    assert split_sentences([5, 6, 7, 8, 9], [0, 1, 0, 0, 0], max_pieces=10) == [[5, 6], [7, 8, 9]]
    assert split_sentences([5, 6, 7, 8, 9], [0, 0, 0, 0, 1], max_pieces=2) == [[5, 6], [7, 8], [9]]
    with pytest.raises(ValueError, match="Received: 2 pieces, 1 flags"):
        split_sentences([5, 6], [1], max_pieces=4)


def test_framing_is_cls_a_sep_b_sep_with_segment_ids_aligned_with_the_seps():
    pair = frame_pair([7, 8], [9], sentence_order=1, cls_id=CLS, sep_id=SEP)
    assert pair.token_ids == (CLS, 7, 8, SEP, 9, SEP)
    assert pair.segment_ids == (0, 0, 0, 0, 1, 1)
    assert pair.sentence_order == 1


def test_every_pair_fits_and_is_framed_with_segment_ids_switching_after_the_first_sep():
    for lengths, max_seq_length, seed in random_documents():
        for pair in pairs_of(lengths, max_seq_length, seed):
            ids, segment_ids = pair.token_ids, pair.segment_ids
            assert len(ids) == len(segment_ids) <= max_seq_length
            first_sep = ids.index(SEP)
            assert ids[0] == CLS and ids[-1] == SEP and ids.count(SEP) == 2 and CLS not in ids[1:]
            assert segment_ids == (0,) * (first_sep + 1) + (1,) * (len(ids) - first_sep - 1)
            assert first_sep >= 2 and len(ids) - first_sep - 1 >= 2  # a piece in each segment


def test_the_order_label_says_whether_b_precedes_a_in_the_document():
    orders = []
    for lengths, max_seq_length, seed in random_documents():
        for pair in pairs_of(lengths, max_seq_length, seed):
            first, second = segments(pair)
            earlier, later = (second, first) if pair.sentence_order else (first, second)
            assert max(earlier) < min(later)
            orders.append(pair.sentence_order)
    assert 0.4 < sum(orders) / len(orders) < 0.6


def test_segments_are_contiguous_runs_of_the_document_and_adjacent_unless_cut():
    for lengths, max_seq_length, seed in random_documents():
        for pair in pairs_of(lengths, max_seq_length, seed):
            first, second = segments(pair)
            earlier, later = (second, first) if pair.sentence_order else (first, second)
            for segment in (earlier, later):
                assert segment == list(range(segment[0], segment[0] + len(segment)))
            if len(earlier) + len(later) < max_seq_length - 3:  # nothing was cut
                assert later[0] == earlier[-1] + 1


def test_a_documents_pairs_use_every_piece_once_when_nothing_is_cut():
    pieces, _ = document([3, 2, 4, 1, 3, 2])
    pairs = pairs_of([3, 2, 4, 1, 3, 2], max_seq_length=64)
    used = sorted(piece for pair in pairs for segment in segments(pair) for piece in segment)
    assert used == pieces


def test_pairs_never_cross_documents():
    for lengths, max_seq_length, seed in random_documents(100):
        own = set(range(1000 * seed, 1000 * seed + sum(lengths)))
        for pair in pairs_of(lengths, max_seq_length, seed, first_id=1000 * seed):
            assert set(pair.token_ids) - {CLS, SEP} <= own


def test_a_one_sentence_document_is_split_inside_its_sentence():
    (pair,) = pairs_of([6], max_seq_length=32)
    first, second = segments(pair)
    assert sorted(first + second) == list(range(100, 106))


def test_a_long_document_gives_several_pairs_up_to_the_length_limit():
    pairs = pairs_of([5] * 40, max_seq_length=32, seed=1)
    assert len(pairs) > 5
    assert max(len(p.token_ids) for p in pairs) == 32


def test_a_tail_too_short_for_a_pair_joins_the_last_chunk():
    # Chunks close at 13 pieces; the lone last piece must not be left over as a pair of its own.
    pieces, ends = document([13, 1])
    for seed in range(50):
        pairs = document_pairs(pieces, ends, max_seq_length=16, cls_id=CLS, sep_id=SEP, rng=random.Random(seed))
        assert len(pairs) == 1


def test_documents_of_fewer_than_two_pieces_give_no_pair_and_two_pieces_give_one():
    assert pairs_of([]) == [] and pairs_of([1]) == []
    (pair,) = pairs_of([1, 1])
    assert len(pair.token_ids) == 5


def test_some_documents_aim_at_a_shorter_target():
    full = [pairs_of([2] * 30, max_seq_length=32, seed=seed) for seed in range(400)]
    short = [pairs for pairs in full if len(pairs) > 2]  # 2 pairs of 30 pieces at the full target
    assert 0.5 * SHORT_SEQUENCE_PROBABILITY < len(short) / len(full) < 2 * SHORT_SEQUENCE_PROBABILITY


def test_the_same_document_id_gives_the_same_pairs():
    pieces, ends = document([4, 7, 3, 9, 2])

    def pairs(document_id):
        return document_pairs(pieces, ends, max_seq_length=12, cls_id=CLS, sep_id=SEP, rng=document_rng(document_id))

    assert pairs("doc-1") == pairs("doc-1")
    assert any(pairs(f"doc-{i}") != pairs("doc-1") for i in range(2, 12))


def test_a_length_without_room_for_two_segments_is_refused():
    with pytest.raises(ValueError, match="max_seq_length=4"):
        pairs_of([3, 3], max_seq_length=4)
