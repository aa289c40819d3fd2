"""Driver-monitoring conditions in the procedural renderer: occluders, IR-blocking lenses, seat belt,
light bands and sensor effects, and the exact labels they need (landmark visibility, occluder box and
mask, eye aperture, EAR, the "visible enough" rule).

The renderer calls three hooks: ``eyestate.adjust`` while posing the face, ``draw`` on the linear
canvas before exposure, and ``finish`` on the encoded image. A spec at the condition defaults takes
none of the drawing paths, so it renders the same bytes as before conditions existed.
"""

from __future__ import annotations

from typing import Any, Protocol

import cv2
import numpy as np

from synthgen import cabin
from synthgen.contract import image_struct
from synthgen.dsm import eye_aspect_ratio, visible_enough
from synthgen.generate.procedural import model as fm
from synthgen.generate.procedural import occluders as oc
from synthgen.generate.procedural.eyestate import aperture_mm
from synthgen.generate.procedural.noise import standard_normal
from synthgen.generate.procedural.raster import project
from synthgen.images import encode_png
from synthgen.spec import SceneSpec
from synthgen.vocab import BAND_LUX

_RNG_STREAM = 12  # the renderer uses [seed, 7]; conditions draw from their own stream


class _SceneLike(Protocol):
    spec: SceneSpec
    k: np.ndarray
    ss: int
    rot: np.ndarray
    local: np.ndarray
    verts: np.ndarray
    scale: float

    def to_cam(self, p: np.ndarray) -> np.ndarray: ...


class _LightLike(Protocol):
    def irradiance(self, n: np.ndarray, p: np.ndarray) -> np.ndarray: ...


def _lens_transmittance(glasses: str, nir: bool) -> float:
    vis, ir = oc.LENS_TRANSMITTANCE[glasses]
    return ir if nir else vis


def draw(canvas: np.ndarray, sc: _SceneLike, k: np.ndarray, light: _LightLike, skin: np.ndarray,
         hair: np.ndarray, nir: bool, self_occluded: np.ndarray) -> dict[str, Any]:
    """Draw the spec's conditions into ``canvas`` (supersampled, linear) and return their labels;
    ``self_occluded``: per landmark, whether the face itself hides it (the renderer's depth test)."""
    spec = sc.spec
    shape = canvas.shape[:2]
    rng = np.random.default_rng([spec.seed, _RNG_STREAM])
    occ_z: np.ndarray | None = None  # per canvas pixel, only when an occluder is drawn
    drawn: np.ndarray | None = None
    s = sc.scale

    def albedo(material: str) -> np.ndarray:
        if material == "skin":
            return np.asarray(skin, np.float32)
        if material == "hair":
            return np.asarray(hair, np.float32)
        rgb, ir = oc.MATERIALS[material]
        return np.full(3, ir, np.float32) if nir else np.asarray(rgb, np.float32)

    def shade(n: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.asarray(light.irradiance(n.astype(np.float32), p.astype(np.float32)), np.float32)[:, None]

    need_head = spec.occluder != "none" or spec.seat_belt
    head_z = None
    if need_head:
        skull = (sc.to_cam(np.array([[0.0, -0.012, 0.072]]) * s)[0], sc.rot,
                 np.array([0.077, 0.108, 0.100]) * s)
        head_z = oc.head_depth(sc.verts, skull, k, shape)
    if spec.seat_belt:
        poly, zb = oc.seat_belt_polygon(spec.camera, spec.seat, k, fm.body_scale(spec.age), spec.body_lean,
                                       spec.lean_to)
        m = np.zeros(shape, np.uint8)
        cv2.fillPoly(m, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
        assert head_z is not None
        belt = (m.reshape(-1) > 0) & (zb < head_z)
        canvas.reshape(-1, 3)[belt] = albedo("belt") * 0.6
    if spec.occluder != "none":
        r_cab, _ = cabin.camera_pose(spec.camera, spec.seat)
        eye = cabin.occupant_eye(spec.seat, spec.body_lean, spec.lean_to)  # hands and what they hold lean with the body

        def head_to_cam(p: np.ndarray) -> np.ndarray:
            return sc.to_cam(np.asarray(p, float) * s)

        def seat_to_cam(p: np.ndarray) -> np.ndarray:
            return cabin.to_camera(spec.camera, spec.seat, eye + np.asarray(p, float) * s)

        assert head_z is not None
        layer = oc.draw_occluders(canvas, spec.occluder, sc.local, sc.to_cam, head_to_cam, sc.rot,
                                  seat_to_cam, r_cab, k, head_z, shade, albedo)
        occ_z, drawn = layer.z, layer.drawn

    lens_mask = None
    lens_z = np.inf
    if spec.glasses != "none":
        polys, lens_z = oc.lens_polygons(sc.to_cam, k, fm.face_growth(spec.age))
        if spec.glasses == "ir_blocking":
            lens_mask = oc.draw_ir_lenses(canvas, polys, nir)
        else:
            lm = np.zeros(shape, np.uint8)
            cv2.fillPoly(lm, [np.round(p * 16).astype(np.int32) for p in polys], 1, cv2.LINE_8, shift=4)
            lens_mask = lm > 0
    _light_band(canvas, spec, sc, k, rng, lens_mask)
    return _labels(sc, spec, shape, occ_z, drawn, lens_mask, lens_z, nir, self_occluded)


def _labels(sc: _SceneLike, spec: SceneSpec, shape: tuple[int, int], occ_z: np.ndarray | None,
            drawn: np.ndarray | None, lens_mask: np.ndarray | None, lens_z: float, nir: bool,
            self_occluded: np.ndarray) -> dict[str, Any]:
    px = project(sc.verts, sc.k)
    ss = sc.ss
    q = np.round(px * ss + (ss - 1) / 2.0).astype(np.int64)
    inside = (q[:, 0] >= 0) & (q[:, 1] >= 0) & (q[:, 0] < shape[1]) & (q[:, 1] < shape[0])
    flat = np.where(inside, q[:, 1] * shape[1] + q[:, 0], 0)
    z = sc.verts[:, 2]
    hidden = inside & (occ_z[flat] < z - 1e-4) if occ_z is not None else np.zeros(len(z), bool)
    if lens_mask is not None and _lens_transmittance(spec.glasses, nir) <= oc.OPAQUE_TRANSMITTANCE:
        hidden |= inside & lens_mask.reshape(-1)[flat] & (lens_z < z)
    visible = inside & ~hidden
    mask = None
    if drawn is not None and drawn.any():
        m: np.ndarray = drawn.reshape(shape).astype(np.float32)
        if ss > 1:
            m = np.asarray(cv2.resize(m, (shape[1] // ss, shape[0] // ss), interpolation=cv2.INTER_AREA))
        mask = (m >= 0.5).astype(np.uint8) * 255
    return {
        **point_labels(visible, px, self_occluded),
        **occluder_labels(mask, spec.sample_id),
        "req_eye_aperture_mm": aperture_mm(sc.local),
        "req_illuminance_lux": BAND_LUX[spec.light_band],
    }


def point_labels(visible: np.ndarray, px: np.ndarray, self_occluded: np.ndarray) -> dict[str, Any]:
    """What follows from the 478 landmarks' pixels, their visibility (no occluder or opaque lens in
    front) and self-occlusion (the face itself in front): the 68- and 478-point flags, the EAR of
    the exact 68 points, and the visible-enough rule, which counts occluders only (a rolling readout
    re-derives them from its composed points with this same function)."""
    lm68 = fm.load_model().lm68
    vis68 = visible[lm68]
    return {
        "req_landmarks_68_visible": vis68.tolist(),
        "req_landmarks_478_visible": visible.tolist(),
        "req_landmarks_68_self_occluded": self_occluded[lm68].tolist(),
        "req_landmarks_478_self_occluded": self_occluded.tolist(),
        "req_ear": [round(v, 4) for v in eye_aspect_ratio(px[lm68])],
        "req_visible_enough": visible_enough(vis68),
    }


def occluder_labels(mask: np.ndarray | None, sample_id: str) -> dict[str, Any]:
    """Box and PNG of an occluder's visible pixels (``mask``: 255 = occluder, output resolution);
    empty box and no PNG when nothing of it shows."""
    if mask is not None:
        ys, xs = np.nonzero(mask)
        if len(xs):
            return {"req_occluder_box": [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)],
                    "req_occluder_mask": image_struct(encode_png(mask), f"{sample_id}_occluder.png")}
    return {"req_occluder_box": [], "req_occluder_mask": None}


def _light_band(canvas: np.ndarray, spec: SceneSpec, sc: _SceneLike, k: np.ndarray,
                rng: np.random.Generator, lens_mask: np.ndarray | None) -> None:
    """Scale the linear canvas for the light band: NIR fall-off at night, hard sun from one side,
    window-frame shadow stripes, glare spots on glasses."""
    band = spec.light_band
    if band == "cabin":
        return
    h, w = canvas.shape[:2]
    centre = project(sc.verts[[fm.NOSE_TIP]], k)[0]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if band == "night_nir":
        r2 = ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (0.55 * w) ** 2
        canvas *= (0.15 + 0.85 * np.exp(-r2))[..., None]
    elif band == "dusk":
        canvas *= 0.85
    elif band in ("sun", "sun_stripes"):
        ang = rng.uniform(0, np.pi)
        d = (xx - centre[0]) * np.cos(ang) + (yy - centre[1]) * np.sin(ang)
        edge = rng.uniform(-0.1, 0.1) * w
        canvas *= np.where(d > edge, 1.7, 0.55).astype(np.float32)[..., None]
        if band == "sun_stripes":
            f = float(k[0, 0])
            period = f * 0.07 / float(np.linalg.norm(sc.verts[fm.NOSE_TIP]))
            a2 = ang + rng.uniform(0.6, 1.2)
            u = ((xx * np.cos(a2) + yy * np.sin(a2)) / period + rng.uniform()) % 1.0
            stripe = np.clip((np.abs(u - 0.5) - 0.22) / 0.03, 0, 1)  # soft 2-3 px edges
            canvas *= (0.35 + 1.0 * stripe)[..., None]
        if lens_mask is not None and lens_mask.any():
            ys, xs = np.nonzero(lens_mask)
            i = int(rng.integers(len(xs)))
            rad = max(2.0, 0.18 * (xs.max() - xs.min()))
            blob = np.exp(-(((xx - xs[i]) ** 2 + (yy - ys[i]) ** 2) / (2 * rad**2)))
            canvas += (3.0 * blob * lens_mask)[..., None]


def finish(image: np.ndarray, spec: SceneSpec) -> np.ndarray:
    """Sensor effects on the 8-bit image: noise by light level, motion blur, JPEG compression."""
    if spec.light_band == "cabin" and spec.motion_blur == 0 and spec.jpeg_quality == 0:
        return image
    rng = np.random.default_rng([spec.seed, _RNG_STREAM, 1])
    out: np.ndarray = image.astype(np.float32)
    if spec.motion_blur > 0:
        n = int(np.ceil(spec.motion_blur)) * 2 + 1
        ker = np.zeros((n, n), np.float32)
        ang = rng.uniform(0, np.pi)
        c = n // 2
        for t in np.linspace(-spec.motion_blur / 2, spec.motion_blur / 2, 4 * n):
            ker[int(round(c + t * np.sin(ang))), int(round(c + t * np.cos(ang)))] += 1
        out = np.asarray(cv2.filter2D(out, -1, ker / ker.sum(), borderType=cv2.BORDER_REPLICATE))
    lux = BAND_LUX[spec.light_band]
    sigma = max(0.0, 2.5 * float(np.log10(BAND_LUX["cabin"] / lux)))  # shot/read noise grows in the dark
    if sigma > 0:
        out = out + standard_normal(rng, out.shape) * sigma
    img: np.ndarray = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if spec.jpeg_quality > 0:
        colour = img.ndim == 3
        ok, buf = cv2.imencode(".jpg", img[..., ::-1] if colour else img,
                               [cv2.IMWRITE_JPEG_QUALITY, int(spec.jpeg_quality)])
        if ok:
            dec = np.asarray(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED))
            img = np.ascontiguousarray(dec[..., ::-1]) if colour else dec
    return img
