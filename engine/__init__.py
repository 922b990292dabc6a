"""Training: the one loop with its stages, the schedules, the losses, and the logs, plots and tables of a run."""
