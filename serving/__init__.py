"""Counterpoint runtime: label schema, text normalisation, model folders, predictors, batch jobs and the HTTP API."""

__version__ = "0.1.0"
