"""Batch transform (spec §4): record splitting and packing, DataProcessing filters, the job engine."""
