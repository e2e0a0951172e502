"""Training: the loop, its schedule, checkpoints and the run's metric record."""
