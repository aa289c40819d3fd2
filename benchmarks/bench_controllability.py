"""How well independent models measure what the procedural renderer was asked to draw.

Renders N specs of the default plan, labels them with the default offline labeller stack
(``label_rows``), and prints: detection rate (exactly one face, |head yaw| <= 30), head pose and
gaze median |error| and slope (measured on requested), expression accuracy per class (fer), age MAE
and bias, gender accuracy, dlib identity-embedding cosine between different identities (lower =
more distinct faces), and render time. These are the figures docs/procedural.md quotes.

    .venv/bin/python benchmarks/bench_controllability.py [--n 200] [--workers 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow as pa


def render(n: int) -> tuple[pa.Table, float]:
    """Default-plan renders with their req_* columns, and CPU ms per render."""
    from synthgen.config import Params
    from synthgen.contract import image_struct
    from synthgen.generate.base import GENERATORS
    from synthgen.images import encode_png
    from synthgen.plan.planner import plan_specs

    params = Params()
    specs = plan_specs(params.plan.model_copy(update={"n": n}), params.seed)
    gen = GENERATORS.create(params.generate.backend, params.generate)
    rows = []
    cpu = time.process_time()
    samples = gen.generate(specs)
    cpu_ms = 1000 * (time.process_time() - cpu) / max(n, 1)
    for spec, s in zip(specs, samples):
        rows.append({"sample_id": spec.sample_id, "image": image_struct(encode_png(s.image), None),
                     **spec.req_columns()})
    return pa.Table.from_pylist(rows), cpu_ms


def _col(t: pa.Table, name: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in t.column(name).to_pylist()], dtype=object)


def _num(t: pa.Table, name: str) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in t.column(name).to_pylist()])


def _angle(t: pa.Table, what: str, mask: np.ndarray | None = None) -> str:
    req, meas = _num(t, f"req_{what}"), _num(t, f"meas_{what}")
    ok = ~np.isnan(meas) & (mask if mask is not None else True)
    if ok.sum() < 3:
        return f"{what}: n={ok.sum()}"
    err = np.abs(meas[ok] - req[ok])
    slope = np.polyfit(req[ok], meas[ok], 1)[0]
    return (f"{what:11s} n={ok.sum():4d} median|err|={np.median(err):5.1f} "
            f"bias={np.mean(meas[ok] - req[ok]):+5.1f} slope={slope:5.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--workers", type=int, default=0, help="0 = one per core")
    args = ap.parse_args()
    from synthgen.label.config import LabelParams
    from synthgen.label.pipeline import label_rows
    from synthgen.vocab import EXPRESSIONS

    table, cpu_ms = render(args.n)
    t = label_rows(table, LabelParams(workers=args.workers), progress=False)
    print(f"{args.n} default-plan renders, CPU {cpu_ms:.0f} ms/render (incl. generate overhead)")
    yaw = np.abs(_num(t, "req_head_yaw"))
    count = _num(t, "meas_face_count")
    front = yaw <= 30
    print(f"detection (exactly one face, |head yaw| <= 30): {np.mean(count[front] == 1):.1%} of {front.sum()}")
    for what in ("head_yaw", "head_pitch", "head_roll"):
        print(_angle(t, what))
    eyes_open = np.array(t.column("req_eyes_open").to_pylist(), bool)
    for what in ("gaze_yaw", "gaze_pitch"):
        print(_angle(t, what, eyes_open))
    req_e, meas_e = _col(t, "req_expression"), _col(t, "meas_expression")
    inten = _num(t, "req_expression_intensity")
    print("expression top-1 accuracy per class (intensity >= 0.5):")
    for e in EXPRESSIONS:
        m = (req_e == e) & (inten >= 0.5)
        print(f"  {e:9s} {int(np.sum(meas_e[m] == e)):3d}/{int(m.sum())}")
    age, mage = _num(t, "req_age"), _num(t, "meas_age")
    ok = ~np.isnan(mage)
    print(f"age: n={ok.sum()} MAE={np.mean(np.abs(mage[ok] - age[ok])):.1f} "
          f"bias={np.mean(mage[ok] - age[ok]):+.1f} years")
    g_req, g_meas = _col(t, "req_gender"), _col(t, "meas_gender")
    ok = np.array([isinstance(v, str) for v in g_meas])
    print(f"gender accuracy: {np.mean(g_req[ok] == g_meas[ok]):.2f} (n={ok.sum()})")
    print(identity_similarity(t))


def identity_similarity(t: pa.Table) -> str:
    """Mean cosine of dlib's identity embeddings between renders of different identity seeds, and
    between renders of the same seed where the plan repeats one. Why: a renderer whose identities
    all embed alike cannot supply identity-diverse training data."""
    if "meas_identity_embedding" not in t.column_names:
        return "identity: no embeddings"
    embs = t.column("meas_identity_embedding").to_pylist()
    ids = t.column("req_identity_seed").to_pylist()
    keep = [i for i, e in enumerate(embs) if e]
    if len(keep) < 2:
        return "identity: n<2"
    e = np.array([embs[i] for i in keep], float)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    cos = e @ e.T
    same = np.equal.outer([ids[i] for i in keep], [ids[i] for i in keep])
    off = ~np.eye(len(keep), dtype=bool)
    diff_c = float(cos[off & ~same].mean())
    same_c = f"{cos[off & same].mean():.3f}" if (off & same).any() else "-"
    return f"identity cosine: different seeds {diff_c:.3f}, same seed {same_c} (n={len(keep)})"


if __name__ == "__main__":
    main()
