"""Encoders and head: shapes, padding invariance, config and save/load round-trips, sharing, training."""

import dataclasses
import inspect

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from model.albert_encoder import AlbertEncoder
from model.bilstm_encoder import BiLstmEncoder
from model.classifier import ENCODERS, build_classifier, build_encoder
from model.classifier_head import ClassifierHead
from schemas import features
from schemas.config import AlbertConfig, BiLstmConfig

VOCAB_SIZE = 20
SEQ_LENGTH = 6
PAD = features.PAD_ID

# Three rows of real tokens followed by padding, four positions long; one row is all padding.
TOKENS = np.array([[5, 3, 7, 2], [11, 4, PAD, PAD], [PAD, PAD, PAD, PAD]], dtype="int64")


def pad_to(token_ids, length):
    return np.pad(token_ids, ((0, 0), (0, length - token_ids.shape[1])), constant_values=PAD)


def tiny_bilstm(**kwargs):
    return BiLstmEncoder(VOCAB_SIZE, **{**dict(embedding_dim=8, projection_dim=6, lstm_units=4,
                                                num_lstm_layers=2, dropout=0.1), **kwargs})


def tiny_albert(**kwargs):
    return AlbertEncoder(VOCAB_SIZE, SEQ_LENGTH, **{**dict(embedding_dim=4, hidden_dim=8, num_layers=2,
                                                           num_groups=1, num_heads=2, intermediate_dim=8,
                                                           dropout=0.1), **kwargs})


def tiny_pooled_embeddings(**kwargs):
    return tiny_bilstm(**{"num_lstm_layers": 0, **kwargs})


def tiny_albert_cls(**kwargs):
    return tiny_albert(**{"pooling": "cls", **kwargs})


ENCODER_FACTORIES = {"bilstm": tiny_bilstm, "albert": tiny_albert, "albert_cls": tiny_albert_cls,
                     "pooled_embeddings": tiny_pooled_embeddings}


@pytest.fixture(params=sorted(ENCODER_FACTORIES))
def make_encoder(request):
    return ENCODER_FACTORIES[request.param]


@pytest.fixture
def mixed_bfloat16():
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_encoder_output_shape_is_batch_by_output_dim(make_encoder):
    encoder = make_encoder()
    outputs = encoder(pad_to(TOKENS, SEQ_LENGTH))
    assert tuple(outputs.shape) == (3, encoder.output_dim)


def test_bilstm_output_dim_is_mean_and_max_of_both_directions():
    assert tiny_bilstm(lstm_units=4).output_dim == 16


def test_bilstm_without_lstm_layers_pools_the_projected_embeddings_whatever_their_order():
    encoder = tiny_pooled_embeddings(projection_dim=6)
    assert encoder.output_dim == 12 and not encoder.lstm_layers
    in_order = encoder(np.array([[5, 3, 7, 2, PAD]]), training=False)
    shuffled = encoder(np.array([[7, 2, 5, 3, PAD]]), training=False)
    np.testing.assert_allclose(in_order, shuffled, atol=1e-6)
    assert not np.allclose(in_order, encoder(np.array([[7, 2, 5, 5, PAD]]), training=False))


def test_bilstm_rejects_a_negative_number_of_lstm_layers():
    with pytest.raises(ValueError, match="Received: num_lstm_layers=-1"):
        tiny_bilstm(num_lstm_layers=-1)


def test_encoder_accepts_int32_and_int64_ids_alike(make_encoder):
    encoder = make_encoder()
    np.testing.assert_allclose(encoder(TOKENS.astype("int32")), encoder(TOKENS), atol=1e-6)


def test_trailing_padding_never_changes_encoder_output(make_encoder):
    encoder = make_encoder()
    short = encoder(TOKENS, training=False)
    padded = encoder(pad_to(TOKENS, SEQ_LENGTH), training=False)
    np.testing.assert_allclose(short, padded, atol=1e-5)


def test_all_padding_rows_give_finite_outputs(make_encoder):
    encoder = make_encoder()
    outputs = encoder(np.zeros((2, SEQ_LENGTH), dtype="int64"))
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(outputs)))


def test_albert_rejects_inputs_longer_than_max_seq_length():
    with pytest.raises(ValueError, match="max_seq_length=6"):
        tiny_albert()(np.ones((2, SEQ_LENGTH + 1), dtype="int64"))


def test_albert_rejects_long_inputs_whose_length_is_known_only_at_run_time():
    encoder = tiny_albert()
    traced = tf.function(encoder, input_signature=[tf.TensorSpec((None, None), tf.int64)])
    assert tuple(traced(pad_to(TOKENS, SEQ_LENGTH)).shape) == (3, encoder.output_dim)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_seq_length=6"):
        traced(np.ones((2, SEQ_LENGTH + 1), dtype="int64"))


def depends_on_an_assertion(op: tf.Operation) -> bool:
    """Whether `op` can run only after an Assert op: one is among its data or control inputs, transitively."""
    seen, pending = set(), [op]
    while pending:
        current = pending.pop()
        if current.type == "Assert":
            return True
        if current.name not in seen:
            seen.add(current.name)
            pending.extend([t.op for t in current.inputs] + list(current.control_inputs))
    return False


def test_albert_computes_nothing_before_its_run_time_length_check():
    # Ordering, not a race that load could win: every add and every slice (the position-embedding
    # slice among them) waits for the length check, which a traced function would otherwise run
    # whenever it likes.
    encoder = tiny_albert()
    graph = tf.function(encoder).get_concrete_function(tf.TensorSpec((None, None), tf.int64)).graph
    computed = [op for op in graph.get_operations() if op.type in ("AddV2", "Slice")]
    assert {op.type for op in computed} == {"AddV2", "Slice"}
    assert all(depends_on_an_assertion(op) for op in computed)


@pytest.mark.parametrize("layer_factory", [
    tiny_bilstm,
    tiny_pooled_embeddings,
    tiny_albert,
    lambda: tiny_albert(pooling="cls", num_groups=2, num_inner_repetitions=2),
    lambda: ClassifierHead(3, hidden_units=(8, 4), dropout=0.2, batch_norm=True, activation="sigmoid"),
], ids=["bilstm", "pooled_embeddings", "albert", "albert_cls_groups", "head"])
def test_get_config_round_trip_builds_an_equal_layer(layer_factory):
    layer = layer_factory()
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config


def test_head_config_lists_hidden_units():
    assert ClassifierHead(2, hidden_units=(8, 4)).get_config()["hidden_units"] == [8, 4]


def test_saved_and_reloaded_classifier_predicts_the_same(make_encoder, tmp_path):
    # batch_norm=True, so the saved weights include non-trainable ones (the moving statistics).
    model = build_classifier(make_encoder(), ClassifierHead(3, hidden_units=(8,), batch_norm=True))
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    token_ids = pad_to(TOKENS, SEQ_LENGTH)
    np.testing.assert_array_equal(model.predict(token_ids, verbose=0), reloaded.predict(token_ids, verbose=0))


def test_albert_is_keras_hubs_backbone_with_its_interface():
    encoder = tiny_albert()
    assert isinstance(encoder.backbone, keras_hub.models.AlbertBackbone)
    assert set(encoder.backbone.input) == {"token_ids", "segment_ids", "padding_mask"}
    outputs = encoder.backbone({"token_ids": TOKENS, "segment_ids": np.zeros_like(TOKENS),
                                "padding_mask": (TOKENS != PAD).astype("int32")})
    assert tuple(outputs["sequence_output"].shape) == (3, 4, 8) and tuple(outputs["pooled_output"].shape) == (3, 8)


def test_albert_cls_pooling_is_the_backbones_pooled_output_for_the_first_token():
    encoder = tiny_albert(pooling="cls")
    pooled = encoder(TOKENS, training=False)
    expected = encoder.backbone({"token_ids": TOKENS, "segment_ids": np.zeros_like(TOKENS),
                                 "padding_mask": (TOKENS != PAD).astype("int32")})["pooled_output"]
    np.testing.assert_allclose(pooled, expected, atol=1e-6)
    changed_first = TOKENS.copy()
    changed_first[0, 0] = 9
    assert not np.allclose(encoder(changed_first, training=False)[0], pooled[0])


def test_albert_mean_pooling_differs_from_cls_pooling_on_the_same_weights():
    mean = tiny_albert(pooling="mean")
    cls = tiny_albert(pooling="cls")
    cls.set_weights(mean.get_weights())  # both poolings have exactly the backbone's weights
    assert not np.allclose(mean(TOKENS, training=False)[:2], cls(TOKENS, training=False)[:2], atol=1e-4)


def test_albert_rejects_an_unknown_pooling():
    with pytest.raises(ValueError, match="Received: pooling='max'"):
        tiny_albert(pooling="max")


@pytest.mark.usefixtures("mixed_bfloat16")
def test_albert_backbone_follows_the_mixed_precision_policy():
    encoder = tiny_albert()
    assert encoder.backbone.dtype_policy.name == "mixed_bfloat16"
    assert keras.backend.standardize_dtype(encoder(TOKENS).dtype) == "bfloat16"
    assert all(w.dtype == "float32" for w in encoder.weights)


def test_albert_shares_one_block_across_all_layers():
    def count(encoder):
        encoder.build((None, SEQ_LENGTH))
        return len(encoder.weights), encoder.count_params()

    six_layers_one_group = count(tiny_albert(num_layers=6, num_groups=1))
    assert six_layers_one_group == count(tiny_albert(num_layers=1, num_groups=1))
    six_layers_two_groups = count(tiny_albert(num_layers=6, num_groups=2))
    assert six_layers_two_groups[0] > six_layers_one_group[0]
    assert six_layers_two_groups[1] > six_layers_one_group[1]
    assert count(tiny_albert(num_layers=6, num_groups=2, num_inner_repetitions=2)) == count(
        tiny_albert(num_layers=2, num_groups=1, num_inner_repetitions=4))  # four distinct blocks each


def test_albert_rejects_layers_not_divisible_by_groups():
    with pytest.raises(ValueError, match="Received: num_layers=5, num_groups=2"):
        tiny_albert(num_layers=5, num_groups=2)


def test_albert_rejects_hidden_dim_not_divisible_by_heads():
    with pytest.raises(ValueError, match="Received: hidden_dim=8, num_heads=3"):
        tiny_albert(hidden_dim=8, num_heads=3)


def test_softmax_head_rows_sum_to_one():
    probabilities = ClassifierHead(3, hidden_units=(8,))(np.random.default_rng(0).normal(size=(4, 5)))
    assert tuple(probabilities.shape) == (4, 3)
    np.testing.assert_allclose(keras.ops.sum(probabilities, axis=-1), np.ones(4), atol=1e-6)


def test_sigmoid_head_outputs_probabilities_per_label():
    head = ClassifierHead(3, hidden_units=(8,), batch_norm=True, activation="sigmoid")
    probabilities = keras.ops.convert_to_numpy(head(np.random.default_rng(0).normal(size=(4, 5)) * 10))
    assert probabilities.shape == (4, 3)
    assert np.all((probabilities >= 0) & (probabilities <= 1))


def test_head_rejects_an_unknown_activation():
    with pytest.raises(ValueError, match="Received: activation='relu'"):
        ClassifierHead(3, activation="relu")


@pytest.mark.usefixtures("mixed_bfloat16")
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_head_outputs_float32_under_mixed_precision(activation):
    head = ClassifierHead(3, hidden_units=(8,), activation=activation)
    assert head.compute_dtype == "bfloat16"
    probabilities = head(np.random.default_rng(0).normal(size=(4, 5)).astype("float32"))
    assert keras.backend.standardize_dtype(probabilities.dtype) == "float32"


@pytest.mark.usefixtures("mixed_bfloat16")
def test_classifier_outputs_float32_probabilities_under_mixed_precision(make_encoder):
    model = build_classifier(make_encoder(), ClassifierHead(3, hidden_units=(8,)))
    probabilities = model.predict(pad_to(TOKENS, SEQ_LENGTH), verbose=0)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=-1), np.ones(3), atol=1e-5)


def test_train_step_updates_encoder_weights(make_encoder):
    encoder = make_encoder()
    model = build_classifier(encoder, ClassifierHead(3, hidden_units=(8,)))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = [w.numpy().copy() for w in encoder.trainable_weights]
    embeddings_before = encoder.token_embedding.embeddings.numpy().copy()
    model.train_on_batch(pad_to(TOKENS, SEQ_LENGTH), np.array([0, 1, 2]))
    changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, encoder.trainable_weights)]
    assert sum(changed) > len(changed) // 2
    # The gradient reaches the bottom of the encoder.
    assert not np.array_equal(embeddings_before, encoder.token_embedding.embeddings.numpy())


def test_build_encoder_builds_each_named_encoder():
    assert isinstance(build_encoder("bilstm", VOCAB_SIZE, SEQ_LENGTH, lstm_units=4), BiLstmEncoder)
    albert = build_encoder("albert", VOCAB_SIZE, SEQ_LENGTH, hidden_dim=8, num_heads=2)
    assert isinstance(albert, AlbertEncoder) and albert.max_seq_length == SEQ_LENGTH
    assert ENCODERS == ("bilstm", "albert", "none")
    with pytest.raises(ValueError, match="no layer"):  # the n-gram path alone: build_classifier(None, ...)
        build_encoder("none", VOCAB_SIZE, SEQ_LENGTH)


def test_build_encoder_pools_albert_by_mean_when_the_job_leaves_pooling_to_the_data():
    assert build_encoder("albert", VOCAB_SIZE, SEQ_LENGTH, hidden_dim=8, num_heads=2, pooling="auto").pooling == "mean"
    assert build_encoder("albert", VOCAB_SIZE, SEQ_LENGTH, hidden_dim=8, num_heads=2, pooling="cls").pooling == "cls"


def test_build_encoder_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="Received: name='transformer'"):
        build_encoder("transformer", VOCAB_SIZE, SEQ_LENGTH)


@pytest.mark.parametrize("encoder_class, config_class", [(BiLstmEncoder, BiLstmConfig), (AlbertEncoder, AlbertConfig)])
def test_encoder_defaults_are_the_job_configs_defaults(encoder_class, config_class):
    parameters = inspect.signature(encoder_class).parameters
    for field in dataclasses.fields(config_class):
        if field.name != "pooling":  # "auto" is resolved from the data before the encoder is built
            assert parameters[field.name].default == field.default, field.name
