"""Evaluation protocols: each trains and evaluates through train.py, one workdir per run."""
