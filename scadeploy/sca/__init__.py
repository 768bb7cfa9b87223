"""The SCA method: channel activity scores, prune/regrow masks, the training loop and DDP.

Datasets live in `scadeploy.data`.

Nothing here imports Lava. Typical use:

    from scadeploy.sca import TrainConfig, train
    result = train(TrainConfig(model="digits", dataset="digits", keep_ratio=0.3, seed=0))
    save_checkpoint(result.checkpoint, "digits.pt")
"""

from scadeploy.sca.config import ConfigError, EpochStats, TrainConfig, TrainResult
from scadeploy.sca.trainer import train

__all__ = ["ConfigError", "EpochStats", "TrainConfig", "TrainResult", "train"]
