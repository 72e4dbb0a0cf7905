"""What pretraining reads: a pretrain-task preprocessing output, as masked-LM + sentence-order batches.

The directory (`pipelines.preprocess --task pretrain`) holds train/ and eval/ gzip TFRecords of
segment pairs (features.PAIR_TOKEN_IDS, PAIR_SEGMENT_IDS, SENTENCE_ORDER; unpadded), the
SentencePiece model (spiece.model) and stats.json.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from model.data import read_finished_stats
from model.filesystem import join
from model.inputs import without_autotuning
from model.masking import MaskingSettings, batch_masking_map
from schemas import features
from schemas.errors import UserError

MLM_OUTPUT = "mlm"  # the model's masked-LM logits [B, max_predictions, vocab]
SOP_OUTPUT = "sop"  # its sentence-order logits [B, 2]
MASK_POSITIONS = "mask_positions"
PADDING_MASK = "padding_mask"


@dataclasses.dataclass(frozen=True)
class PretrainData:
    data_dir: str
    vocab_size: int
    max_seq_length: int
    train_pairs: int
    eval_pairs: int
    train_tokens: int
    special_tokens: dict  # {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
    tokenizer_sha256: str
    lowercase: bool

    @property
    def tokenizer_model_path(self) -> str:
        return join(self.data_dir, features.TOKENIZER_MODEL_FILE)

    @property
    def mean_pair_length(self) -> float:
        return self.train_tokens / max(self.train_pairs, 1)

    def files(self, split: str) -> list[str]:
        return sorted(tf.io.gfile.glob(join(self.data_dir, split, f"*{features.TFRECORD_SUFFIX}")))


def read_pretrain_data(data_dir: str) -> PretrainData:
    """stats.json of a finished pretrain-task preprocessing output; UserError for anything else."""
    data_dir = data_dir.rstrip("/")
    stats = read_finished_stats(data_dir, "python -m pipelines.preprocess --task pretrain")
    task = stats.get("task", features.TASK_CLASSIFY)
    if task != features.TASK_PRETRAIN:
        raise UserError(f"{data_dir} holds {task}-task data (labelled documents); pretraining reads segment pairs: "
                        f"preprocess with --task pretrain.")
    if not stats.get("pairs", {}).get("train"):
        raise UserError(f"{data_dir} has no training pairs: its corpus had no document long enough for a pair.")
    special = stats.get("special_tokens") or {}
    if special.get("mask") is None:
        raise UserError(f"The SentencePiece model of {data_dir} has no [MASK] piece, which masked-LM pretraining "
                        f"needs; preprocess with a model that has one (or let preprocessing learn it).")
    if not tf.io.gfile.exists(join(data_dir, features.TOKENIZER_MODEL_FILE)):
        raise UserError(f"{data_dir} has no {features.TOKENIZER_MODEL_FILE}; is it a finished pretrain-task output?")
    return PretrainData(data_dir=data_dir, vocab_size=stats["vocab_size"], max_seq_length=stats["max_seq_length"],
                        train_pairs=stats["pairs"]["train"], eval_pairs=stats["pairs"].get("eval", 0),
                        train_tokens=stats.get("tokens", {}).get("train", 0), special_tokens=special,
                        tokenizer_sha256=stats["tokenizer_sha256"], lowercase=bool(stats.get("lowercase", False)))


def masking_settings(data: PretrainData, mask_fraction: float, max_ngram: int, max_predictions: int
                     ) -> MaskingSettings:
    special = tuple(sorted({int(i) for i in data.special_tokens.values() if i is not None} | {features.PAD_ID}))
    return MaskingSettings(mask_id=int(data.special_tokens["mask"]), special_ids=special,
                           vocab_size=data.vocab_size, mask_fraction=mask_fraction, max_ngram=max_ngram,
                           max_predictions=max_predictions)


_PAIR_SPEC = {
    features.PAIR_TOKEN_IDS: tf.io.RaggedFeature(tf.int64),
    features.PAIR_SEGMENT_IDS: tf.io.RaggedFeature(tf.int64),
    features.SENTENCE_ORDER: tf.io.FixedLenFeature([], tf.int64),
}


def make_pretrain_dataset(data: PretrainData, split: str, batch_size: int, masking: MaskingSettings, *,
                          training: bool, seed: int, shuffle_buffer: int = 10000, max_batches: int = 0,
                          first_batch: int = 0) -> tf.data.Dataset:
    """Batches of (inputs, labels, sample weights) for the pretraining model's `fit`/`evaluate`.

    inputs: token_ids (masked), segment_ids, padding_mask [B, T] (T: the batch's longest pair) and
    mask_positions [B, P]; labels: {"mlm": original ids [B, P], "sop": order [B]}; sample weights:
    {"mlm": 1.0 for real predictions, 0.0 for unused slots [B, P], "sop": ones [B]}.

    Training input shuffles and repeats forever, masking afresh each time a batch is read. A resumed
    run passes the batches already trained on as `first_batch`: its order and masks then differ
    from the first run's instead of repeating them.
    Evaluation input is read once in file order with the same masks every time (`max_batches`
    batches at most; 0: all), and says how many batches it holds, so Keras never reads past its end.
    """
    files = data.files(split)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    shuffle_seed = seed + first_batch
    if training:
        dataset = dataset.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP"),
                                 cycle_length=tf.data.AUTOTUNE, num_parallel_calls=tf.data.AUTOTUNE,
                                 deterministic=True)  # same seed, same batches: a rerun can be compared
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=True).repeat()
    dataset = dataset.map(lambda record: tf.io.parse_single_example(record, _PAIR_SPEC),
                          num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.padded_batch(batch_size, padded_shapes={features.PAIR_TOKEN_IDS: [None],
                                                              features.PAIR_SEGMENT_IDS: [None],
                                                              features.SENTENCE_ORDER: []},
                                   padding_values=None)  # 0 = features.PAD_ID
    if not training:
        pairs = data.eval_pairs if split == features.EVAL_SPLIT else data.train_pairs
        batches = -(-pairs // batch_size)
        if max_batches:
            batches = min(batches, max_batches)
            dataset = dataset.take(batches)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    mask = batch_masking_map(masking, seed)

    def to_model_batch(index, batch):
        token_ids, positions, ids, weights = mask(index, batch[features.PAIR_TOKEN_IDS])
        order = batch[features.SENTENCE_ORDER]
        inputs = {features.PAIR_TOKEN_IDS: token_ids, features.PAIR_SEGMENT_IDS: batch[features.PAIR_SEGMENT_IDS],
                  PADDING_MASK: tf.not_equal(batch[features.PAIR_TOKEN_IDS], features.PAD_ID),
                  MASK_POSITIONS: positions}
        return inputs, {MLM_OUTPUT: ids, SOP_OUTPUT: order}, {MLM_OUTPUT: weights, SOP_OUTPUT: tf.ones_like(order,
                                                                                                      tf.float32)}

    dataset = dataset.enumerate(start=first_batch).map(to_model_batch, num_parallel_calls=tf.data.AUTOTUNE,
                                                       deterministic=True)
    if not training:
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(without_autotuning())
