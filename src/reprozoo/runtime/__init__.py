"""Shared machinery that knows no paper: registry, configs, trainer, reports, profiling."""
