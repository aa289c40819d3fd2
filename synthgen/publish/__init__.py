"""Publish stage: versioned, hive-partitioned Parquet shards with a manifest and a dataset card."""
