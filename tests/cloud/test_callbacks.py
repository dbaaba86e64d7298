import numpy as np
import pytest


@pytest.mark.parametrize("monitor, higher, values", [
    ("val_loss", False, [3.0, 1.0, 2.0]),
    ("val_accuracy", True, [0.3, 0.9, 0.5]),
])
def test_keep_best_restores_the_best_epoch_without_stopping_early(monitor, higher, values):
    import tensorflow as tf

    from splitleak.cloud.callbacks import KeepBest

    model = tf.keras.Sequential([tf.keras.Input((1,)), tf.keras.layers.Dense(1)])
    keep = KeepBest(monitor, higher_is_better=higher, patience=2)
    keep.set_model(model)
    snapshots = []
    for epoch, value in enumerate(values):
        model.set_weights([np.full((1, 1), epoch, np.float32), np.zeros(1, np.float32)])
        snapshots.append(model.get_weights())
        keep.on_epoch_end(epoch, {monitor: value})
    assert not model.stop_training  # the run ends on its own, after a worse last epoch
    keep.on_train_end()
    best = snapshots[int(np.argmax(values) if higher else np.argmin(values))]
    for restored, kept in zip(model.get_weights(), best, strict=True):
        np.testing.assert_array_equal(restored, kept)


def test_keep_best_stops_after_patience_and_never_with_zero():
    import tensorflow as tf

    from splitleak.cloud.callbacks import KeepBest

    model = tf.keras.Sequential([tf.keras.Input((1,)), tf.keras.layers.Dense(1)])
    for patience, stops in ((2, True), (0, False)):
        model.stop_training = False
        keep = KeepBest("val_loss", patience=patience)
        keep.set_model(model)
        for epoch, loss in enumerate([1.0, 2.0, 3.0, 4.0]):
            keep.on_epoch_end(epoch, {"val_loss": loss})
        assert model.stop_training == stops
