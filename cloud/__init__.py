"""The cloud side: data protocols, the split model, training, TFLite export and the cloud head."""
