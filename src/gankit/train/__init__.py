"""The training loop and its mechanics: EMA, checkpoints, distributed, logging."""
