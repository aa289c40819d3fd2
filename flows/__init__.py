"""Prefect flows that drive synthgen's stage functions (see flows/generate_dataset.py)."""
