"""The dataset card (_README.md inside each published version): how it was made and how to read it."""

from __future__ import annotations

from typing import Any


def dataset_card(manifest: dict[str, Any], params_yaml: str) -> str:
    name, version = manifest["name"], manifest["version"]
    splits = "\n".join(f"| {s} | {n} |" for s, n in manifest["splits"].items())
    reasons = "\n".join(f"| {r} | {n} |" for r, n in manifest["reject_reasons"].items()) or "| (none) | 0 |"
    gens = ", ".join(f"{g} ({n})" for g, n in manifest["generators"].items())
    curated = (
        "Every row was auto-labelled and curated: `accepted` is false for rejected rows, and "
        "`reject_reasons` says why. Rejected rows are kept so they stay queryable."
        if manifest["curated"]
        else "This version was **not curated**: every row is marked accepted."
    )
    failed = manifest.get("failed_shards") or {}
    failures = (
        f"\n**Incomplete: {len(failed)} shard(s) failed and are missing from this version.**\n\n"
        "| shard | error |\n|---|---|\n"
        + "\n".join(f"| {s} | {str(e).splitlines()[0][:200].replace('|', '/')} |" for s, e in failed.items()) + "\n"
        if failed else ""
    )
    return f"""# {name} — version {version}

Synthetic in-cabin face images made by synthgen {manifest['synthgen_version']} with: {gens}.
{manifest['rows']} rows, {manifest['accepted']} accepted.
{failures}

{curated}

## Splits (by identity: no synthetic person appears in two splits)

| split | rows |
|---|---|
{splits}

## Reject reasons

| reason | rows |
|---|---|
{reasons}

## Layout

Hive-partitioned Parquet (`version=…/split=…/part-NNNNN.parquet`, zstd), one row per image,
row groups of about 100 rows. `image` and `control_image` are `struct{{bytes, path}}` PNGs (the
Hugging Face `datasets` Image layout). `req_*` columns hold requested attributes and exact
geometry, `meas_*` columns what the labellers measured. `_manifest.json` lists every file with
its row count and SHA-256.

## Reading it

```python
import polars as pl
lf = pl.scan_parquet("data/datasets/{name}/**/*.parquet", hive_partitioning=True)
lf.filter(pl.col("accepted")).group_by("req_expression").len().collect()
```

```bash
synthgen query --where "accepted AND req_age > 60" --select sample_id,req_age,req_expression
```

## Parameters

```yaml
{params_yaml.rstrip()}
```
"""
