"""Hyperparameter tuning: search spaces, strategies and the engine that runs the training jobs."""
