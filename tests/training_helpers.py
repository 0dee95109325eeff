"""A tiny text trainer that several test modules train: a learnable period-7 stream, a 2 x 16 TextPredictor."""

import keras
import numpy as np
import tensorflow as tf

from graves_tf import training
from graves_tf.data import stream_segments
from graves_tf.models import TextPredictor

VOCAB, BATCH = 7, 4


def periodic_stream(n=4000):
    """A learnable text: a fixed period-7 pattern with a little noise."""
    rng = np.random.default_rng(0)
    ids = np.tile(np.array([0, 1, 2, 3, 4, 5, 6]), n // 7 + 1)[:n]
    flips = rng.random(n) < 0.05
    ids[flips] = rng.integers(0, VOCAB, flips.sum())
    return ids


def text_source(ids, segment=20, reset_every=5):
    return training.DataSource(lambda epoch: stream_segments(ids, BATCH, segment, reset_every), BATCH)


def make_trainer(tmp_path, train_steps, strategy=None, learning_rate=0.01, **config):
    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(1)
    with strategy.scope():
        model = TextPredictor(VOCAB, units=16, num_layers=2)
        optimizer = keras.optimizers.Adam(learning_rate)
    ids = periodic_stream()
    settings = dict(model_dir=str(tmp_path), train_steps=train_steps, checkpoint_every=5, eval_every=0,
                    log_every=5, progress_bar=False)
    settings.update(config)
    return training.Trainer(
        model,
        optimizer,
        training.TrainConfig(**settings),
        text_source(ids),
        validation_data=lambda: stream_segments(ids[:1000], BATCH, 20, 5),
        strategy=strategy,
    )
