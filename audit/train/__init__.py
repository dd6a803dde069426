"""Training: data, model, loop, checkpoints. Knows nothing about claims or MLflow."""

from audit.train.loop import RunLogger, TrainResult, device_name, train

__all__ = ["RunLogger", "TrainResult", "device_name", "train"]
