"""Counterpoint's offline pipeline: data, fine-tuning, baseline, calibration, evaluation and export."""
