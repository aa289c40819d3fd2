"""The dataset card of each published version: ``README.md`` with Hugging Face front matter, the
parameters beside it (``_params.yaml``) and a few example images (``.examples/``).

The front matter's ``configs`` list one ``data_files`` pattern per split, so the Hub and
``datasets.load_dataset(<version folder>)`` open train/val/test with no arguments. The card's
name is the one file without a leading underscore besides the data: Parquet readers given the
folder must be told to take ``*.parquet`` only (the README's recipes do).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

CARD = "README.md"
PARAMS_FILE = "_params.yaml"
# A dot folder: pyarrow.dataset skips it, and `datasets` does not take its PNGs for data files
# (an underscore folder would make a folder load guess "imagefolder").
EXAMPLES_DIR = ".examples"
N_EXAMPLES = 4

# The Hub's task ids that fit one row per face with gaze/head/age/expression labels and landmarks.
TASK_CATEGORIES = ["image-classification", "keypoint-detection"]
TAGS = ["synthetic", "faces", "gaze-estimation", "head-pose", "driver-monitoring", "in-cabin"]

_SCALAR = {"string": "string", "bool": "bool", "int32": "int32", "int64": "int64",
           "float": "float32", "double": "float64", "binary": "binary"}

# What each column means; families are described by prefix below.
COLUMN_NOTES = {
    "sample_id": "deterministic id of the row (from the plan index and seed)",
    "source": "`synthetic` or `real`",
    "dataset": "dataset name",
    "dataset_version": "the version this row was published in",
    "split": "train / val / test, by identity (no synthetic person in two splits)",
    "generator": "backend that made the image (procedural, diffusion)",
    "generator_version": "version of that backend",
    "seed": "run seed",
    "image": "the image (PNG), a `datasets` Image",
    "control_image": "the face-mesh control map with pupils (ControlNetMediaPipeFace style), a `datasets` Image",
    "width": "image width in pixels",
    "height": "image height in pixels",
    "prompt": "text prompt (diffusion backend), empty for the procedural renderer",
    "req_landmarks_68": "68 (x, y) pixel pairs, flattened, iBUG-300W order (exact, from the renderer)",
    "req_landmarks_478": "MediaPipe face-mesh order, 468 points then 10 iris points, flattened (x, y)",
    "req_pupils": "(x, y) of the subject's right pupil, then the left one",
    "req_face_box": "x0, y0, x1, y1 in pixels",
    "req_gaze_vector": "unit gaze vector in the camera frame (x right, y down, z away from the camera)",
    "req_gaze_zone": "cabin zone the gaze ray lands in",
    "req_camera_matrix": "3x3 pinhole intrinsics, row-major, pixels",
    "accepted": "kept by curation",
    "reject_reasons": "why curation rejected the row (empty when accepted)",
}


def _note(name: str) -> str:
    if name in COLUMN_NOTES:
        return COLUMN_NOTES[name]
    if name.endswith("_labeler"):
        return "which labeller measured this group"
    if name.endswith("_conf"):
        return "the labeller's confidence"
    if name.startswith("req_"):
        return f"requested {name.removeprefix('req_').replace('_', ' ')} (what the image was made to show)"
    if name.startswith("meas_"):
        return f"measured {name.removeprefix('meas_').replace('_', ' ')} (offline face models)"
    return ""


def feature_yaml(field: pa.Field, image_columns: set[str]) -> dict[str, Any]:
    """One ``dataset_info.features`` entry in the Hub's YAML form (what ``datasets`` writes)."""
    if field.name in image_columns:
        return {"name": field.name, "dtype": "image"}
    t = field.type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return {"name": field.name, "list": _SCALAR[str(t.value_type)]}
    return {"name": field.name, "dtype": _SCALAR[str(t)]}


def _image_columns(schema: pa.Schema) -> set[str]:
    import json

    meta = (schema.metadata or {}).get(b"huggingface")
    feats = json.loads(meta)["info"]["features"] if meta else {}
    return {k for k, v in feats.items() if v.get("_type") == "Image"}


def front_matter(manifest: dict[str, Any], schema: pa.Schema) -> dict[str, Any]:
    images = _image_columns(schema)
    # The split= folder names are hive partitions; `split` is also a column in every file, so the
    # features are exactly the files' columns.
    features = [feature_yaml(f, images) for f in schema]
    splits = list(manifest["splits"])
    procedural_only = set(manifest["generators"]) <= {"procedural"}
    rows = manifest["rows"]
    size = "n<1K" if rows < 1_000 else "1K<n<10K" if rows < 10_000 else "10K<n<100K" if rows < 100_000 else "100K<n<1M"
    return {
        "pretty_name": f"{manifest['name']} {manifest['version']}",
        # the procedural renders are this project's output; diffusion output follows its weights' licence
        "license": "apache-2.0" if procedural_only else "other",
        "task_categories": TASK_CATEGORIES,
        "tags": TAGS,
        "size_categories": [size],
        "configs": [{
            "config_name": "default",
            "default": True,
            "data_files": [{"split": s, "path": f"split={s}/*.parquet"} for s in splits],
        }],
        "dataset_info": {
            "features": features,
            "splits": [{"name": s, "num_bytes": _split_bytes(manifest, s), "num_examples": n}
                       for s, n in manifest["splits"].items()],
        },
    }


def _split_bytes(manifest: dict[str, Any], split: str) -> int:
    return sum(int(f["bytes"]) for f in manifest["files"] if f["path"].startswith(f"split={split}/"))


def pick_examples(version_dir: Path, manifest: dict[str, Any], n: int = N_EXAMPLES) -> list[dict[str, Any]]:
    """The first accepted rows of the first part of each split (deterministic: same data, same
    examples), with the few columns the card shows."""
    cols = ["sample_id", "split", "image", "req_age", "req_expression", "req_gaze_yaw", "req_gaze_pitch",
            "req_lighting", "accepted"]
    picked: list[dict[str, Any]] = []
    firsts: dict[str, str] = {}
    for f in manifest["files"]:
        firsts.setdefault(f["path"].split("/")[0], f["path"])
    for rel in list(firsts.values()):
        if len(picked) >= n:
            break
        table = pq.read_table(version_dir / rel, columns=cols)
        rows = [r for r in table.to_pylist() if r["accepted"] and r["image"]] or table.to_pylist()[:1]
        picked.extend(rows[: max(1, n // max(len(firsts), 1))])
    return picked[:n]


def _example_png(row: dict[str, Any]) -> bytes:
    """A thumbnail of at most 256 px (the Hub shows the card; full images stay in the Parquet)."""
    from PIL import Image

    img = Image.open(io.BytesIO(row["image"]["bytes"]))
    img.thumbnail((256, 256))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def coverage_markdown(coverage: dict[str, Any] | None) -> str:
    """The planned-vs-accepted section (Markdown) from a manifest's ``planned_vs_accepted`` entry:
    Jensen-Shannon divergence (bits, log base 2: 0 = same shares, 1 = disjoint) per attribute, and
    the bins whose accepted share is furthest from the plan's. Empty when the entry is missing."""
    if not coverage:
        return ""
    rows = []
    for a, jsd in coverage["jsd"].items():
        shares = coverage["attributes"].get(a, {})
        p, q = shares.get("planned_share", {}), shares.get("accepted_share", {})
        worst = sorted(p, key=lambda b: -abs(p[b] - q.get(b, 0.0)))[:3]
        gaps = ", ".join(f"{b} {100 * p[b]:.0f}% → {100 * q.get(b, 0.0):.0f}%" for b in worst if p[b] or q.get(b))
        rows.append(f"| {a} | {jsd:.4f} | {gaps} |")
    topup = coverage.get("topup_rows", 0)
    how = (f"{topup} rows were added by {coverage.get('topup_rounds', 0)} top-up round(s) "
           "(`curate.topup`) for bins accepted below the plan's share."
           if topup else "No top-up rows: the accepted set is what curation kept of the plan.")
    return f"""## Planned vs accepted coverage

Jensen-Shannon divergence (base {coverage.get('jsd_base', 2)}, bits: 0 = the accepted rows have the
plan's shares, 1 = disjoint) between the plan's requested attributes and the accepted rows'.
{how}

| attribute | JSD (bits) | largest share gaps (planned → accepted) |
|---|---|---|
{chr(10).join(rows)}
"""


def agreement_markdown(agreement: dict[str, Any] | None) -> str:
    """The card's section on how far the ``meas_*`` readings agree with the ``req_*`` requests
    (curate's ``label_agreement``); empty when the version was not curated."""
    if not agreement or not agreement.get("figures"):
        return ""
    rows = "\n".join(f"| {f['what']} | {f['value']:.3g} | {f['unit']} | {f['rows']} |" for f in agreement["figures"])
    return f"""## How well the offline models read the requests

Over all {agreement['rows']} labelled rows, before curation. The `req_*` columns are exact (what
was drawn); the `meas_*` columns are readings of the images by the offline face models. Where the
two disagree beyond `curate.tolerances`, the row is rejected with its reason (below), so the
accepted rows agree within those tolerances; these figures say how far the renderer and the
readers are apart in this version.

| what | value | unit | rows |
|---|---|---|---|
{rows}

"""


def dataset_card(manifest: dict[str, Any], schema: pa.Schema, examples: list[dict[str, Any]]) -> str:
    name, version = manifest["name"], manifest["version"]
    meta = yaml.safe_dump(front_matter(manifest, schema), sort_keys=False, width=120)
    splits = _table(("split", "rows"), list(manifest["splits"].items()))
    reasons = _table(("reason", "rows"), list(manifest["reject_reasons"].items()) or [("(none)", 0)])
    gens = ", ".join(f"{g} ({n})" for g, n in manifest["generator_versions"].items())
    labellers = manifest["code_versions"].get("labelers", {})
    labelled_by = ("Labelled by " + ", ".join(f"`{k}` {v}" for k, v in labellers.items()) + ".\n"
                   if labellers else "")
    columns = _table(("column", "type", "meaning"),
                     [(f"`{f.name}`", str(f.type), _note(f.name)) for f in schema])
    shown = "\n".join(
        f"| ![{r['sample_id']}]({EXAMPLES_DIR}/{r['sample_id']}.png) | {r['split']} | "
        f"{r['req_age']:.0f} | {r['req_expression']} | {r['req_gaze_yaw']:.0f} / {r['req_gaze_pitch']:.0f} | "
        f"{r['req_lighting']} |"
        for r in examples
    )
    curated = (
        "Every row was auto-labelled and curated: `accepted` is false for rejected rows, and "
        "`reject_reasons` says why. Rejected rows are kept so they stay queryable; filter on "
        "`accepted` to train."
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
    licence = (
        "Apache-2.0, like synthgen: the images are the procedural renderer's output."
        if front_matter(manifest, schema)["license"] == "apache-2.0"
        else "Images made with diffusion weights follow those weights' licence (see `generate.diffusion` "
             "in `_params.yaml`)."
    )
    return f"""---
{meta}---

# {name} — version {version}

Synthetic in-cabin face images for driver and occupant monitoring, made by synthgen
{manifest['synthgen_version']} with: {gens}. {manifest['rows']} rows, {manifest['accepted']} accepted.
{labelled_by}Each row holds the image, what was requested (`req_*`: age, expression, gaze, head pose,
lighting, camera, exact landmarks) and what offline face models measured (`meas_*`).

{failures}
{curated}

{coverage_markdown(manifest.get("planned_vs_accepted"))}
{agreement_markdown(manifest.get("label_agreement"))}## Loading it

```python
import datasets
ds = datasets.load_dataset("path/to/version={version}")        # DatasetDict: {', '.join(manifest['splits'])}
train = ds["train"].filter(lambda r: r["accepted"])            # `image` decodes to a PIL image
```

`datasets.load_dataset("path/to/{name}", data_dir="version={version}")` reads the same rows as
one `train` split (filter on the `split` column). Plain Parquet readers must be given
`*.parquet` files only: README.md and the `_`/`.` files beside them are not data.

```python
import polars as pl
lf = pl.scan_parquet("path/to/version={version}/**/*.parquet", hive_partitioning=True)
```

## Splits (by identity: no synthetic person appears in two splits)

{splits}

## Examples

| image | split | age | expression | gaze yaw / pitch (deg) | lighting |
|---|---|---|---|---|---|
{shown}

## Reject reasons

{reasons}

## Known limitations

- Synthetic faces: the procedural renderer's faces are stylised (a smooth hair cap, lids that
  follow the gaze only vertically); models trained on them need real data to transfer.
- The `meas_*` labels come from offline models that read the synthetic faces' gaze pitch poorly
  and misread anger, sadness, fear and disgust more often than not (the agreement table above
  has this version's figures); curation rejects those rows with their reason rather than keeping
  wrong labels.
- Ages, skin tones and expressions follow the plan's distributions (`_params.yaml`), not any
  real population; check the splits' balance before drawing conclusions about fairness.

## Columns

{columns}

## Files

Hive-partitioned Parquet (`split=…/part-NNNNN.parquet`, zstd), one row per image. `image` and
`control_image` are `struct{{bytes, path}}` PNGs declared as `datasets` Image features.
`_manifest.json` lists every data file with its row count and SHA-256; `_params.yaml` holds
the parameters this version was made with; `.examples/` the images shown above.

## Licence

{licence}
"""


def write_card(version_dir: Path, manifest: dict[str, Any], params_yaml: str) -> None:
    """Write the card, the parameters and the example images into a version folder being built."""
    from synthgen.io import write_bytes_atomic, write_text_atomic

    schema = pq.read_schema(version_dir / manifest["files"][0]["path"]) if manifest["files"] else pa.schema([])
    examples = pick_examples(version_dir, manifest) if manifest["files"] else []
    for row in examples:
        write_bytes_atomic(version_dir / EXAMPLES_DIR / f"{row['sample_id']}.png", _example_png(row))
    write_text_atomic(version_dir / PARAMS_FILE, params_yaml)
    write_text_atomic(version_dir / CARD, dataset_card(manifest, schema, examples))
