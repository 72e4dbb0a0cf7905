"""tf.data input pipelines over the transformed TFRecords: (token_ids, labels) batches."""

from __future__ import annotations

import tensorflow as tf

from model.data import PreprocessedData
from model.padding import trim_trailing_padding
from schemas import features

# Batches are cut to their longest document, rounded up to 1/8 of max_seq_length (at least 8
# tokens): short documents stop paying for max_seq_length, and an XLA-compiled training step
# sees at most 8 distinct shapes.
_WIDTH_STEPS = 8
_MIN_WIDTH_MULTIPLE = 8


def padding_multiple(max_seq_length: int) -> int:
    return max(_MIN_WIDTH_MULTIPLE, -(-max_seq_length // _WIDTH_STEPS))


def _parse_batch(serialized: tf.Tensor, data: PreprocessedData):
    parsed = tf.io.parse_example(serialized, data.feature_spec)
    if data.multi_label:
        labels = parsed[features.LABEL_MULTI_HOT]
        if isinstance(labels, tf.RaggedTensor):  # how tf.Transform stores a ragged output
            labels = labels.to_tensor(shape=[None, data.num_labels])
    else:
        labels = parsed[features.LABEL_ID]
    token_ids = trim_trailing_padding(parsed[features.TOKEN_IDS], padding_multiple(data.max_seq_length))
    return token_ids, labels


def make_dataset(data: PreprocessedData, split: str, batch_size: int, *, training: bool,
                 shuffle_buffer: int = 10000, seed: int = 42, multi_worker: bool = False) -> tf.data.Dataset:
    """Batches of (token_ids [B, T], labels [B] or [B, num_labels]), T <= max_seq_length.

    T is the batch's longest document rounded up (see `padding_multiple`); the encoders mask
    padding, so the width changes the cost of a step, not its result.

    Training input reads shards in parallel, shuffles and repeats (so `fit` needs `steps_per_epoch`);
    evaluation input is read once in file order, so predictions line up with labels, and says how
    many batches it holds: Keras stops at that count rather than running into the end of the data,
    which it reports as "Your input ran out of data" on every `evaluate` and `predict`.

    Across workers (MultiWorkerMirroredStrategy) tf.distribute shards the batches by data: every
    worker reads the same stream and keeps its part of each global batch of `batch_size`. So each
    step trains on exactly the batch one worker alone would, whatever the number of shard files (a
    small corpus has one per split, fewer than the workers that sharding by file needs), and
    evaluation's predictions come back in file order, lined up with the labels. The cost: every
    worker reads and parses all of it, cheap next to the model's step (token ids, no tokenizing).
    `multi_worker=True` makes that stream the same on every worker: files are interleaved in a
    fixed order (one worker alone takes whichever file is ready first).
    """
    files = data.files(split)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP"),
        cycle_length=tf.data.AUTOTUNE, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training or multi_worker)
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()
    dataset = dataset.batch(batch_size, drop_remainder=False)
    if not training:
        examples = data.eval_examples if split == features.EVAL_SPLIT else data.train_examples
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(-(-examples // batch_size)))
    dataset = (dataset
               .map(lambda serialized: _parse_batch(serialized, data), num_parallel_calls=tf.data.AUTOTUNE)
               .prefetch(tf.data.AUTOTUNE))
    options = without_autotuning()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def without_autotuning() -> tf.data.Options:
    """Options that turn off tf.data's autotuning thread.

    Deleting an iterator waited for that thread's next wake-up (seconds to a minute apart), and
    Keras builds a new evaluation iterator every epoch: epochs took up to a minute longer, at random
    (20 Newsgroups: 137 or 198 s for the same epoch). The input is cheap next to the model, so the
    static AUTOTUNE defaults cost nothing measurable (TREC: 784-993 examples/s per epoch without
    the thread, 835-933 in the epochs that did not wait with it).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options
