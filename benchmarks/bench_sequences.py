"""Driver-monitoring conditions and sequences, measured with the offline face models.

Sections (``--only`` picks some):
- ``conditions``: every occluder, eye state, IR-blocking lens and light band renders; among the
  renders the rule calls visible enough, the share in which the face detector still finds the face
  (MediaPipe BlazeFace, and dlib's HOG detector as a second model the renderer was not tuned to);
- ``visibility``: landmark flags vs the pixels (a hidden point's pixel must show the occluder);
- ``aperture``: Spearman correlation of the requested (exact) eye aperture with the measured EAR
  (MediaPipe mesh, and dlib's 68 points as the second model);
- ``clips``: N clips rendered and labelled frame by frame; a plain EAR blink detector (EAR below half
  the clip's open EAR) against the planned blinks (onset and duration within one frame), and glances
  recomputed from the measured gaze zone per frame against the planned ones;
- ``ear_curve`` (not in the default set): for ``--idents`` frontal identities (12), the exact EAR and the EAR read
  by the MediaPipe mesh (tuned with) and dlib's 68 points (held out), as a fraction of the open
  eye's while the lids close, with each reader's mean error against the exact ratio;
- ``lean`` (not in the default set): a coverage plan with lean and owl glances (one age band, two
  skin types) planned, rendered, labelled and curated by the stage functions on params.yaml: per
  movement, rows, faces found, median head-yaw error (the labellers read the leaned crop's camera
  matrix) and the accepted share;
- ``rolling`` (not in the default set): what held-out models read of a rolling readout, 3
  identities: MediaPipe's standalone iris network on a +-1500 deg/s saccade under a 100 ms readout
  (distance of the found pupils to the rolling labels and to the mid-instant ones), and MediaPipe's
  face mesh on a +-400 deg/s head turn over 30 ms (shear between the two turns: upper half of the
  face minus lower half, in x, by the labels and by the mesh);
- ``cost``: render time per frame of clips vs single images of the default mix (ratio); with
  ``--readout MS`` also per frame of the same clips under that rolling-shutter readout;
- ``e2e``: a 10 s clip at 10 fps planned, rendered, labelled, curated and published by the stage
  functions with 2 workers, wall time, and its ratio to the same stages on 100 single images.

``--shading pixel|sample`` renders the ``clips`` and ``ear_curve`` sections with that
``generate.procedural.shading``.

Run: ``python benchmarks/bench_sequences.py [--clips 50] [--only conditions,aperture]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from synthgen import dsm
from synthgen.contract import image_struct
from synthgen.generate.procedural.renderer import render_spec
from synthgen.images import encode_png
from synthgen.label.base import FaceContext
from synthgen.label.eye_aperture import MESH_EYES_68
from synthgen.spec import SceneSpec
from synthgen.vocab import EYE_STATES, OCCLUDERS

SIZE = 256
CLIP_LABELERS = ["mediapipe_detector", "mediapipe_mesh", "dlib", "head_pose", "iris_gaze", "eye_aperture"]
BLINK_LABELERS = ["mediapipe_detector", "mediapipe_mesh", "eye_aperture"]  # enough for EAR


def _spec(i: int, **kw: Any) -> SceneSpec:
    r = np.random.default_rng(i)
    base = dict(sample_id=f"b{i}", index=i, seed=i, identity=i % 20, identity_seed=1000 + i % 20,
                age=float(r.uniform(18, 75)), gender=str(r.choice(["female", "male"])),
                skin_tone=int(r.integers(1, 11)), gaze_yaw=float(r.uniform(-15, 15)),
                gaze_pitch=float(r.uniform(-10, 5)), head_yaw=float(r.uniform(-20, 20)),
                head_pitch=float(r.uniform(-8, 8)), camera=str(r.choice(["rearview_mirror", "a_pillar"])))
    base.update(kw)
    return SceneSpec(**base)


def _labelers(names: list[str], gaze_reference: str = "corners") -> Any:
    from synthgen.label.config import LabelParams
    from synthgen.label.pipeline import build_labelers

    return build_labelers(LabelParams(labelers=names, gaze={"vertical_reference": gaze_reference}))


def _measure(labs: Any, image: np.ndarray, spec: SceneSpec) -> dict[str, Any]:
    from synthgen.label.pipeline import label_one

    return label_one(labs, image_struct(encode_png(image), "x"), {"req_camera": spec.camera, "req_seat": spec.seat})


def conditions(per: int) -> dict[str, Any]:
    mp = _labelers(["mediapipe_detector"])
    hog = _labelers(["dlib_hog"])
    variants: list[tuple[str, dict[str, Any]]] = [(f"occluder={o}", {"occluder": o}) for o in OCCLUDERS]
    variants += [(f"eye_state={e}", {"eye_state": e}) for e in EYE_STATES]
    variants += [("glasses=ir_blocking,nir", {"glasses": "ir_blocking", "lighting": "nir"}),
                 ("glasses=sunglasses,nir", {"glasses": "sunglasses", "lighting": "nir"}),
                 ("light=night_nir", {"light_band": "night_nir", "lighting": "nir"}),
                 ("light=sun_stripes", {"light_band": "sun_stripes", "glasses": "glasses"}),
                 ("light=sun", {"light_band": "sun"}), ("light=dusk", {"light_band": "dusk"}),
                 ("sensor=blur4+jpeg40", {"motion_blur": 4.0, "jpeg_quality": 40}),
                 ("seat_belt", {"seat_belt": True}),
                 ("body_lean=0.15", {"body_lean": 0.15, "seat_belt": True})]
    variants += [(f"facial_hair={f},{light}", {"facial_hair": f, "gender": "male", "age": 45.0, "lighting": light})
                 for f in ("moustache", "beard") for light in ("rgb", "nir")]
    rows = {}
    tot = {"ve": 0, "mp": 0, "hog": 0}
    for name, kw in variants:
        ve = found_mp = found_hog = 0
        for i in range(per):
            spec = _spec(10_000 + i, **kw)
            r = render_spec(spec, SIZE, SIZE)
            if not r.labels["req_visible_enough"]:
                continue
            ve += 1
            found_mp += int((_measure(mp, r.image, spec).get("meas_face_count") or 0) >= 1)
            found_hog += int((_measure(hog, r.image, spec).get("meas_face_count") or 0) >= 1)
        rows[name] = {"rendered": per, "visible_enough": ve, "found_mediapipe": found_mp, "found_dlib_hog": found_hog}
        tot["ve"] += ve
        tot["mp"] += found_mp
        tot["hog"] += found_hog
        print(f"  {name:28s} visible enough {ve:3d}/{per}  found: mediapipe {found_mp:3d}  dlib_hog {found_hog:3d}")
    out = {"per_condition": rows,
           "found_when_visible_enough_mediapipe": tot["mp"] / max(tot["ve"], 1),
           "found_when_visible_enough_dlib_hog": tot["hog"] / max(tot["ve"], 1)}
    print(f"conditions: face found when visible enough: mediapipe {out['found_when_visible_enough_mediapipe']:.3f}, "
          f"dlib_hog {out['found_when_visible_enough_dlib_hog']:.3f} (target >= 0.95)")
    return out


def visibility(per: int) -> dict[str, Any]:
    """Hidden points must lie on pixels the occluder changed; visible ones on unchanged pixels."""
    agree = total = 0
    hidden_on = hidden_n = vis_off = vis_n = 0
    for o in OCCLUDERS[1:]:
        for i in range(per):
            plain = render_spec(_spec(20_000 + i), SIZE, SIZE)
            r = render_spec(_spec(20_000 + i, occluder=o), SIZE, SIZE)
            diff = np.abs(r.image.astype(int) - plain.image.astype(int))
            changed = (diff.max(-1) if diff.ndim == 3 else diff) > 0  # same seed: same noise, so any change is the occluder
            px = np.round(np.array(r.labels["req_landmarks_478"]).reshape(-1, 2)).astype(int)
            vis = np.array(r.labels["req_landmarks_478_visible"])
            inside = (px[:, 0] >= 1) & (px[:, 1] >= 1) & (px[:, 0] < SIZE - 1) & (px[:, 1] < SIZE - 1)
            # A point counts as "on the occluder" when its pixel and its 4 neighbours all changed,
            # "off" when none did: rim pixels (antialiased) are left out.
            q = px[inside]
            nb = np.stack([changed[q[:, 1] + dy, q[:, 0] + dx] for dx, dy in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))])
            on, off = nb.all(0), ~nb.any(0)
            v = vis[inside]
            hidden_on += int((~v & on).sum())
            hidden_n += int((~v & (on | off)).sum())
            vis_off += int((v & off).sum())
            vis_n += int((v & (on | off)).sum())
            agree += int(((~v & on) | (v & off)).sum())
            total += int((on | off).sum())
    out = {"agreement": agree / max(total, 1), "hidden_on_occluder": hidden_on / max(hidden_n, 1),
           "visible_off_occluder": vis_off / max(vis_n, 1), "points_checked": total}
    print(f"visibility: flags agree with the pixels at {out['agreement']:.4f} of {total} points "
          f"(hidden on occluder {out['hidden_on_occluder']:.4f}, visible off it {out['visible_off_occluder']:.4f})")
    return out


def aperture(idents: int) -> dict[str, Any]:
    from scipy.stats import spearmanr

    labs = _labelers(["mediapipe_detector", "mediapipe_mesh", "dlib"])
    ap, ear_mesh, ear_dlib = [], [], []
    for i in range(idents):
        for o in np.linspace(0.0, 1.0, 9):
            spec = _spec(30_000 + i, eye_openness=float(o))
            r = render_spec(spec, SIZE, SIZE)
            mesh, dlib68 = _reader_ears(labs, r.image, spec)
            if np.isnan(mesh) or np.isnan(dlib68):
                continue
            ap.append(float(np.mean(r.labels["req_eye_aperture_mm"])))
            ear_mesh.append(mesh)
            ear_dlib.append(dlib68)
    out = {"n": len(ap), "spearman_mediapipe_mesh": float(spearmanr(ap, ear_mesh)[0]),
           "spearman_dlib68": float(spearmanr(ap, ear_dlib)[0]),
           "aperture_mm_range": [min(ap), max(ap)] if ap else []}
    print(f"aperture: Spearman(requested aperture, measured EAR) over {len(ap)} renders: "
          f"mediapipe mesh {out['spearman_mediapipe_mesh']:.3f}, dlib 68 {out['spearman_dlib68']:.3f} (target >= 0.9)")
    return out


def _clip_worker(args: tuple[list[dict[str, Any]], int, bool, str, str]) -> list[dict[str, Any]]:
    specs_json, size, gaze, gaze_reference, shading = args
    labs = _labelers(CLIP_LABELERS if gaze else BLINK_LABELERS, gaze_reference)
    out = []
    for d in specs_json:
        spec = SceneSpec.model_validate(d)
        r = render_spec(spec, size, size, shading=shading)
        m = _measure(labs, r.image, spec)
        mesh = m.get("meas_landmarks_478")
        widths = None
        if mesh:
            xy = np.asarray(mesh, float).reshape(-1, 2)
            widths = [float(np.linalg.norm(xy[33] - xy[133])), float(np.linalg.norm(xy[362] - xy[263]))]
        out.append({"ear": m.get("meas_ear"), "eye_widths": widths, "zone": m.get("meas_gaze_zone"),
                    "req_zone": r.labels["req_gaze_zone"],
                    # the exact labels: are all 12 eye points (68-point scheme) in view, no occluder or dark lens?
                    "eyes_visible": all(r.labels["req_landmarks_68_visible"][36:48]),
                    # an eye whose six points no occluder, dark lens or the face itself (the nose, on a
                    # turned head) hides: enough for an EAR
                    "an_eye_in_view": any(all(v and not o for v, o in zip(r.labels["req_landmarks_68_visible"][e],
                                                                             r.labels["req_landmarks_68_self_occluded"][e],
                                                                             strict=True))
                                          for e in (slice(36, 42), slice(42, 48)))})
    return out


def _relative(e: np.ndarray) -> np.ndarray:
    """EAR relative to the clip's open-eye EAR (its 90th percentile); a frame without landmarks
    counts as open."""
    ref = np.nanpercentile(e, 90) if np.isfinite(e).any() else 1.0
    return np.where(np.isfinite(e), e, ref) / max(ref, 1e-6)


def _blink_frames(ear: list[Any]) -> np.ndarray:
    """Per-frame mean EAR of the two eyes relative to the clip's open-eye EAR; NaN-free."""
    return _relative(np.array([np.mean(v) if v else np.nan for v in ear], float))


# Measured eye widths (corner to corner, pixels) differing by more than this factor: read the wider eye.
NEAR_EYE_RATIO = 1.25


def _blink_frames_near_eye(ear: list[Any], widths: list[Any]) -> np.ndarray:
    """The same detector reading the eye that faces the camera: each eye's EAR relative to its own
    open EAR, and on frames where one eye looks more than NEAR_EYE_RATIO times wider than the other
    (a turned head: the far eye is foreshortened or behind the nose, and the mesh's guess at it
    barely closes) only the wider eye's; the mean of both otherwise. Only measured landmarks decide."""
    per_eye = [_relative(np.array([v[j] if v else np.nan for v in ear], float)) for j in (0, 1)]
    out = (per_eye[0] + per_eye[1]) / 2
    for f, w in enumerate(widths):
        if w and min(w) > 0 and max(w) / min(w) > NEAR_EYE_RATIO:
            out[f] = per_eye[int(np.argmax(w))][f]
    return out


def clips(n: int, frames: int, fps: float, workers: int, gaze_clips: int, readout_ms: float = 0.0,
          gaze_reference: str = "corners", shading: str = "pixel") -> dict[str, Any]:
    from synthgen.plan.config import PlanParams
    from synthgen.plan.sequence import plan_sequences

    params = PlanParams.model_validate({"n": n, "identities": max(3, n // 2), "kind": "sequence",
                                        "attributes": {"camera": {"dist": "categorical",
                                                                  "values": ["rearview_mirror", "a_pillar"]}},
                                        "sequence": {"frames": frames, "fps": fps, "glance_rate_per_min": 15,
                                                     "readout_ms": readout_ms}})
    specs = plan_sequences(params, 77)
    by_clip = [specs[c * frames:(c + 1) * frames] for c in range(n)]
    t0 = time.perf_counter()
    # spawn: the face models loaded by earlier sections must not be forked (glibc heap corruption)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
        measured = list(ex.map(_clip_worker, [([s.model_dump() for s in clip], SIZE, c < gaze_clips, gaze_reference,
                                               shading) for c, clip in enumerate(by_clip)]))
    wall = time.perf_counter() - t0
    # Two thresholds on EAR / the clip's open EAR: 0.5 (plain), and 0.67, the ratio a half-open eye
    # measures in the aperture section (the planned events call a frame closed below half open).
    detectors = {"mean": lambda meas: _blink_frames([m["ear"] for m in meas]),
                 "near_eye": lambda meas: _blink_frames_near_eye([m["ear"] for m in meas], [m["eye_widths"] for m in meas])}
    stats = {(name, thr): {"planned": 0, "found": 0, "false": 0, "planned_seen": 0, "found_seen": 0, "planned_exact": 0,
                           "found_exact": 0} for name in detectors for thr in (0.5, 0.67)}
    zone_agree = zone_n = 0
    gl_planned = gl_found = 0
    for c, (clip, meas) in enumerate(zip(by_clip, measured, strict=True)):
        ev = dsm.ClipEvents.from_json(clip[0].sequence_events)
        planned = [b for b in ev.closures if b.n_frames >= 1]
        rels = {name: fn(meas) for name, fn in detectors.items()}
        # "seen": the mesh found the face on the closure's frames and one either side, the head is
        # within 45 degrees of the camera (beyond, the eye is too foreshortened for an EAR), and the
        # exact visibility labels show both eyes (no occluder, no lens a camera cannot see through).
        ok = np.array([bool(m["ear"]) and abs(s.head_yaw) <= 45 and m["eyes_visible"]
                       for m, s in zip(meas, clip, strict=True)])
        # "in view" by the exact labels alone: an eye with none of its points behind an occluder, a dark
        # lens or the face itself (renderers >= 0.8.7 label self-occlusion), whatever the readers found.
        in_view = np.array([m["an_eye_in_view"] for m in meas])
        for (name, thr), st in stats.items():
            detected = dsm.closures(rels[name], fps, threshold=thr)
            used: set[int] = set()
            for b in planned:
                span = slice(max(0, b.onset_frame - 1), b.onset_frame + b.n_frames + 1)
                seen, exact = bool(ok[span].all()), bool(in_view[span].all())
                st["planned"] += 1
                st["planned_seen"] += int(seen)
                st["planned_exact"] += int(exact)
                for j, d in enumerate(detected):
                    if j not in used and abs(d.onset_frame - b.onset_frame) <= 1 and abs(d.n_frames - b.n_frames) <= 1:
                        used.add(j)
                        st["found"] += 1
                        st["found_seen"] += int(seen)
                        st["found_exact"] += int(exact)
                        break
            st["false"] += len(detected) - len(used)
        if c >= gaze_clips:
            continue  # gaze measured on the first gaze_clips clips only (dlib + head pose + iris gaze)
        mz = [m["zone"] or "windshield" for m in meas]
        zone_agree += sum(a == b for a, b in zip(mz, [m["req_zone"] for m in meas], strict=True))
        zone_n += len(meas)
        measured_gl = dsm.glances(mz, fps)
        for g in ev.glances:
            if not g.away:
                continue
            gl_planned += 1
            lo, hi = g.start_frame, g.start_frame + g.n_frames
            for h in measured_gl:
                ov = min(hi, h.start_frame + h.n_frames) - max(lo, h.start_frame)
                if h.target == g.target and ov >= 0.5 * g.n_frames:
                    gl_found += 1
                    break
    # keys: the threshold for the mean of both eyes (as before), near_eye_<threshold> for the eye facing the camera
    blink = {(str(thr) if name == "mean" else f"near_eye_{thr}"): {
        **st, "recall": st["found"] / max(st["planned"], 1), "recall_seen": st["found_seen"] / max(st["planned_seen"], 1),
        "recall_in_view": st["found_exact"] / max(st["planned_exact"], 1)} for (name, thr), st in stats.items()}
    out = {"clips": n, "gaze_clips": gaze_clips, "frames_per_clip": frames, "fps": fps, "readout_ms": readout_ms,
           "blinks": blink,
           "zone_agreement_per_frame": zone_agree / max(zone_n, 1),
           "planned_away_glances": gl_planned, "glances_recovered": gl_found / max(gl_planned, 1),
           "seconds_per_frame_render_and_label": wall * workers / max(n * frames, 1)}
    for key, b in blink.items():
        thr, which = key.removeprefix("near_eye_"), ("the eye facing the camera" if key.startswith("near") else "both eyes' mean")
        print(f"clips: {n} clips x {frames} frames at {fps:g} fps, readout {readout_ms:g} ms, EAR blink detector on {which} "
              f"(EAR < {thr} x open EAR): "
              f"found {b['found']}/{b['planned']} planned closures with onset and length within one frame "
              f"({b['recall']:.3f}; target >= 0.95), {b['found_seen']}/{b['planned_seen']} of those on measurable "
              f"frames ({b['recall_seen']:.3f}), {b['found_exact']}/{b['planned_exact']} with an eye in view by the "
              f"exact labels ({b['recall_in_view']:.3f}), {b['false']} false detections")
    out["gaze_reference"] = gaze_reference
    print(f"clips: measured gaze zone ({gaze_reference} reference) = planned zone on "
          f"{out['zone_agreement_per_frame']:.3f} of frames of "
          f"{gaze_clips} clips; {gl_found}/{gl_planned} planned glances away recovered from measured zones "
          f"({out['glances_recovered']:.3f})")
    return out


def cost(n: int, readout_ms: float = 0.0) -> dict[str, Any]:
    """CPU per clip frame against per single image; with ``readout_ms``, also per frame of the same
    clips under that rolling readout (each drawn at 3 to 9 instants, by how fast it moves)."""
    from synthgen.generate.procedural.rolling import is_rolling, sub_count
    from synthgen.plan.config import PlanParams
    from synthgen.plan.sampling import plan_random
    from synthgen.plan.sequence import plan_sequences

    single = plan_random(PlanParams(n=n, identities=10), 5)
    seq_params = PlanParams.model_validate({"n": max(1, n // 50), "identities": 3, "kind": "sequence",
                                            "sequence": {"frames": 50, "readout_ms": 0.0}})
    seq = plan_sequences(seq_params, 5)[:n]

    def per_image(specs: list[SceneSpec]) -> float:
        t = time.process_time()
        for s in specs:
            render_spec(s, SIZE, SIZE)
        return (time.process_time() - t) / len(specs)

    t_single, t_seq = per_image(single), per_image(seq)
    out: dict[str, Any] = {"cpu_s_per_single_image": t_single, "cpu_s_per_clip_frame": t_seq,
                           "ratio_clip_frame_to_image": t_seq / t_single}
    print(f"cost: CPU per clip frame / per single image = {out['ratio_clip_frame_to_image']:.2f} "
          f"({t_seq * 1000:.0f} ms vs {t_single * 1000:.0f} ms at {SIZE}x{SIZE})")
    if readout_ms > 0:
        rolled = plan_sequences(seq_params.model_copy(update={"sequence": seq_params.sequence.model_copy(
            update={"readout_ms": readout_ms})}), 5)[:n]
        t_roll = per_image(rolled)
        subs = [sub_count(s) if is_rolling(s) else 1 for s in rolled]
        out.update(readout_ms=readout_ms, cpu_s_per_rolling_frame=t_roll, ratio_rolling_frame_to_image=t_roll / t_single,
                   mean_instants_per_rolling_frame=float(np.mean(subs)))
        print(f"cost: CPU per clip frame under a {readout_ms:g} ms rolling readout / per single image = "
              f"{t_roll / t_single:.2f} ({t_roll * 1000:.0f} ms; {np.mean(subs):.2f} instants drawn per frame)")
    return out


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _stages(params: Any) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this process and its finished workers) of the stages."""
    from synthgen.stages import run_curate, run_generate, run_label, run_plan, run_publish

    t, c = time.perf_counter(), _cpu()
    run_plan(params)
    run_generate(params, progress=False)
    run_label(params, progress=False)
    run_curate(params, progress=False)
    run_publish(params, progress=False)
    return time.perf_counter() - t, _cpu() - c


def e2e(reference: bool) -> dict[str, Any]:
    from synthgen.config import parse_params

    with tempfile.TemporaryDirectory() as d:
        common = {"data_dir": d, "generate": {"workers": 2}, "label": {"workers": 2},
                  "record": {"dvc_commit": False}}
        seq = parse_params({**common, "plan": {"n": 1, "identities": 1, "shard_size": 50, "kind": "sequence",
                                               "sequence": {"frames": 100, "fps": 10}}})
        t_seq, c_seq = _stages(seq)
        # On a shared machine the wall time includes other people's work; CPU seconds / 2 is the wall
        # time two free cores would need (the stages keep both busy).
        out: dict[str, Any] = {"clip_10s_10fps_wall_s": t_seq, "clip_cpu_s": c_seq, "clip_cpu_s_per_2_cores": c_seq / 2}
        print(f"e2e (clip only): {t_seq:.1f} s wall, {c_seq:.1f} CPU s", flush=True)
        if reference:
            ref = parse_params({**common, "dataset": {"name": "ref"},
                                "plan": {"n": 100, "identities": 10, "shard_size": 50}})
            t_ref, c_ref = _stages(ref)
            out.update(single_100_wall_s=t_ref, single_100_cpu_s=c_ref, ratio_clip_to_single_cpu=c_seq / c_ref)
    print(f"e2e: a 10 s clip at 10 fps planned, rendered, labelled, curated, published with 2 workers: "
          f"{t_seq:.1f} s wall, {c_seq:.1f} CPU s = {c_seq / 2:.1f} s on 2 free cores (target < 60 s)"
          + (f"; 100 single images: {out['single_100_cpu_s']:.1f} CPU s, CPU ratio clip / single "
             f"{out['ratio_clip_to_single_cpu']:.2f}" if reference else ""))
    return out


def _reader_ears(labs: Any, image: np.ndarray, spec: SceneSpec) -> tuple[float, float]:
    """EAR (mean of both eyes) read by the MediaPipe mesh and by dlib's 68 points; NaN if not found."""
    ctx = FaceContext(image=image if image.ndim == 3 else np.repeat(image[..., None], 3, 2),
                      row={"req_camera": spec.camera, "req_seat": spec.seat})
    for lab in labs:
        lab.label(ctx)
    mesh = dlib68 = float("nan")
    if "mesh_xy" in ctx.extras:
        lm = np.zeros((68, 2))
        lm[36:48] = np.asarray(ctx.extras["mesh_xy"])[list(MESH_EYES_68)]
        mesh = float(np.mean(dsm.eye_aspect_ratio(lm)))
    if "lm68" in ctx.extras:
        dlib68 = float(np.mean(dsm.eye_aspect_ratio(np.asarray(ctx.extras["lm68"]).reshape(68, 2))))
    return mesh, dlib68


def ear_curve(idents: int, shading: str = "pixel") -> dict[str, Any]:
    """EAR as a fraction of the open eye's while the lids close (frontal, gaze ahead), read by the
    MediaPipe mesh (the reader the lid rendering was tuned with) and by dlib's 68 points (held out).
    ``shading``: the renderer's ``generate.procedural.shading`` (per output pixel or per sample)."""
    labs = _labelers(["mediapipe_detector", "mediapipe_mesh", "dlib"])
    opens = (1.0, 0.6, 0.4, 0.2, 0.0)
    curves: dict[str, list[np.ndarray]] = {"exact": [], "mesh": [], "dlib68": []}
    for i in range(idents):
        rows: list[tuple[float, float, float]] = []
        for o in opens:
            spec = _spec(60_000 + i, eye_openness=o, head_yaw=0.0, gaze_yaw=0.0, gaze_pitch=0.0)
            r = render_spec(spec, SIZE, SIZE, shading=shading)
            rows.append((float(np.mean(r.labels["req_ear"])), *_reader_ears(labs, r.image, spec)))
        vals = np.array(rows)
        for j, key in enumerate(curves):
            curves[key].append(vals[:, j] / vals[0, j])
    out: dict[str, Any] = {"openness": list(opens), "identities": idents, "shading": shading}
    exact = np.array(curves["exact"])
    print(f"ear_curve: {idents} frontal identities, shading {shading}, EAR / open EAR at openness "
          + " ".join(f"{o:.1f}" for o in opens))
    for key, per_id in curves.items():
        a = np.array(per_id)
        mean = np.nanmean(a, 0)
        out[key] = {"mean_ratio": mean.round(3).tolist(), "closed_max": float(np.nanmax(a[:, -1]))}
        if key != "exact":
            out[key]["mae_vs_exact"] = float(np.nanmean(np.abs(a - exact)[:, 1:]))
        extra = (f"  (mean |reader - exact| {out[key]['mae_vs_exact']:.3f}, worst shut eye "
                 f"{out[key]['closed_max']:.2f})" if key != "exact" else "")
        print(f"  {key:7s} " + " ".join(f"{v:.2f}" for v in mean) + extra)
    return out


def _shear(p: np.ndarray) -> float:
    """Mean x of the upper half of the 468 mesh points minus the lower half's."""
    p = np.asarray(p, float).reshape(-1, 2)[:468]
    upper = p[:, 1] < np.median(p[:, 1])
    return float(p[upper, 0].mean() - p[~upper, 0].mean())


def rolling_readout() -> dict[str, Any]:
    labs = _labelers(["mediapipe_detector", "mediapipe_mesh", "dlib", "head_pose", "mediapipe_iris"])
    rows: list[dict[str, Any]] = []
    for ident in (11, 12, 13):
        base = dict(sample_id="r", index=0, seed=3, identity=0, identity_seed=ident, age=35.0, gender="male",
                    skin_tone=3)
        mid = np.asarray(render_spec(SceneSpec(**base), SIZE, SIZE).labels["req_pupils"]).reshape(2, 2)
        to_rolled, to_mid = [], []
        for rate in (1500.0, -1500.0):
            r = render_spec(SceneSpec(**base, readout_ms=100.0, gaze_yaw_rate=rate), SIZE, SIZE)
            ctx = FaceContext(r.image)
            for lab in labs:
                lab.label(ctx)
            rolled = np.asarray(r.labels["req_pupils"]).reshape(2, 2)
            for found in ctx.extras.get("iris_xy", {}).values():
                to_rolled.append(float(np.min(np.linalg.norm(rolled - found, axis=1))))
                to_mid.append(float(np.min(np.linalg.norm(mid - found, axis=1))))
        shear: dict[str, list[float]] = {"labels": [], "mesh": []}
        for rate in (400.0, -400.0):
            r = render_spec(SceneSpec(**base, head_yaw=10.0, readout_ms=30.0, head_yaw_rate=rate), SIZE, SIZE)
            ctx = FaceContext(r.image)
            for lab in labs[:2]:
                lab.label(ctx)
            shear["labels"].append(_shear(r.labels["req_landmarks_478"]))
            shear["mesh"].append(_shear(ctx.extras["mesh_xy"]))
        row = {"identity_seed": ident, "pupil_to_rolling_px": max(to_rolled), "pupil_to_mid_px": min(to_mid),
               "shear_labels_px": shear["labels"][0] - shear["labels"][1],
               "shear_mesh_px": shear["mesh"][0] - shear["mesh"][1]}
        rows.append(row)
        print(f"rolling: identity {ident}: iris network's pupils {row['pupil_to_rolling_px']:.2f} px (worst) from the "
              f"rolling labels, {row['pupil_to_mid_px']:.2f} px (nearest) from the mid-instant ones; shear of a "
              f"+-400 deg/s turn {row['shear_labels_px']:.2f} px by the labels, {row['shear_mesh_px']:.2f} px by the mesh")
    return {"identities": rows}


def lean(targets: str = "", min_count: int = 0) -> dict[str, Any]:
    """``targets``: comma-separated glance targets (default: params.yaml's); ``min_count``: rows per
    cell (default: params.yaml's)."""
    import polars as pl

    from synthgen.config import load_params
    from synthgen.paths import Layout

    root = Path(__file__).resolve().parents[1]
    extra = ([f"plan.coverage.glance_targets=[{targets}]"] if targets else []) + (
        [f"plan.coverage.min_count={min_count}"] if min_count else [])
    with tempfile.TemporaryDirectory() as d:
        params = load_params(root / "params.yaml", [
            f"data_dir={d}", "plan.mode=coverage", "plan.coverage.movements=[lean, owl]",
            "plan.coverage.age_bands=[30-49]", "plan.coverage.skin_types=[2, 5]", "record.dvc_commit=false", *extra])
        _stages(params)
        curated = Layout.from_params(params).stage_dir("curated")
        df = pl.concat([pl.read_parquet(f) for f in sorted(curated.glob("*.parquet"))], how="diagonal_relaxed")
    to = pl.col("req_lean_to") if "req_lean_to" in df.columns else pl.lit("centre")
    by = (df.with_columns(pl.when(pl.col("req_body_lean") > 0).then(pl.concat_str([pl.lit("lean "), to]))
                          .otherwise(pl.lit("no lean")).alias("body"))
          .group_by("body").agg(pl.len().alias("rows"), pl.col("meas_face_count").eq(1).mean().alias("one_face"),
                                (pl.col("meas_head_yaw") - pl.col("req_head_yaw")).abs().median().alias("head_yaw_err"),
                                pl.col("accepted").mean().alias("accepted")).sort("body"))
    out = {r["body"]: r for r in by.to_dicts()}
    for name, r in out.items():
        print(f"lean: {name:12s} {r['rows']:4d} rows, one face found {r['one_face']:.3f}, median |head yaw error| "
              f"{r['head_yaw_err']:.1f} deg, accepted {r['accepted']:.3f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="conditions,visibility,aperture,clips,cost,e2e")
    ap.add_argument("--per", type=int, default=10, help="renders per condition")
    ap.add_argument("--clips", type=int, default=50)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--readout", type=float, default=0.0, help="clips and cost: rolling-shutter readout in ms "
                    "(0 = global shutter)")
    ap.add_argument("--gaze-reference", default="corners", choices=["corners", "head_model"],
                    help="clips: label.gaze.vertical_reference of the gaze reader")
    ap.add_argument("--gaze-clips", type=int, default=10, help="clips whose gaze is measured too (slower labellers)")
    ap.add_argument("--no-reference", action="store_true", help="e2e without the single-image reference run")
    ap.add_argument("--idents", type=int, default=12, help="ear_curve: frontal identities")
    ap.add_argument("--shading", default="pixel", choices=["pixel", "sample"],
                    help="ear_curve and clips: generate.procedural.shading of the renders")
    ap.add_argument("--lean-targets", default="", help="lean: comma-separated glance targets (default: params.yaml's)")
    ap.add_argument("--lean-min-count", type=int, default=0, help="lean: rows per coverage cell (default: params.yaml's)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    a = ap.parse_args()
    only = set(a.only.split(","))
    res: dict[str, Any] = {"cpus": os.cpu_count()}
    if "conditions" in only:
        res["conditions"] = conditions(a.per)
    if "visibility" in only:
        res["visibility"] = visibility(max(1, a.per // 3))
    if "aperture" in only:
        res["aperture"] = aperture(max(2, a.per))
    if "clips" in only:
        res["clips"] = clips(a.clips, a.frames, a.fps, a.workers, a.gaze_clips, a.readout, a.gaze_reference,
                             a.shading)
    if "ear_curve" in only:
        res["ear_curve"] = ear_curve(a.idents, a.shading)
    if "lean" in only:
        res["lean"] = lean(a.lean_targets, a.lean_min_count)
    if "rolling" in only:
        res["rolling"] = rolling_readout()
    if "cost" in only:
        res["cost"] = cost(100, a.readout)
    if "e2e" in only:
        res["e2e"] = e2e(not a.no_reference)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    from synthgen.native_logs import quiet_native_logs

    quiet_native_logs()  # the face models' native start-up lines, as the CLI drops them unless --verbose
    main()
