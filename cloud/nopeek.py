"""NoPeek (Vepakomma et al. 2020): train the split model to keep its activation from mirroring
its input, by adding alpha x the distance correlation between the two over each batch."""

import tensorflow as tf


def _centred_distances(x: tf.Tensor) -> tf.Tensor:
    """Pairwise Euclidean distances between the batch's rows, double-centred (B, B)."""
    flat = tf.reshape(x, (tf.shape(x)[0], -1))
    squares = tf.reduce_sum(tf.square(flat), axis=1)
    d2 = squares[:, None] + squares[None, :] - 2.0 * tf.matmul(flat, flat, transpose_b=True)
    d = tf.sqrt(tf.maximum(d2, 0.0) + 1e-12)  # finite gradient on the diagonal
    return (d - tf.reduce_mean(d, axis=0, keepdims=True) - tf.reduce_mean(d, axis=1, keepdims=True)
            + tf.reduce_mean(d))


def distance_correlation(x: tf.Tensor, z: tf.Tensor) -> tf.Tensor:
    """Sample distance correlation of x and z over the batch, in [0, 1]: 0 for independent
    samples (in the limit), 1 when one is a similarity transform of the other."""
    a, b = _centred_distances(x), _centred_distances(z)
    dcov = tf.reduce_mean(a * b)
    return tf.sqrt(tf.maximum(dcov, 0.0)
                   / (tf.sqrt(tf.reduce_mean(a * a) * tf.reduce_mean(b * b)) + 1e-12))
