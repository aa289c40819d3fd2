"""Render one SceneSpec: posed face mesh, eyeballs, head and body, cabin, lighting, labels.

Pipeline (all CPU, vectorised): build the identity's face (model.py) -> apply expression, jaw,
eyelids -> place the head in the camera frame (mid-eye point at synthgen.cabin.eye_position,
rotation synthgen.geometry.head_rotation) -> draw layers back to front at ``supersample`` x size
(cabin, torso, hair, neck, ears, skull, mouth, eyeballs, face mesh, glasses) in linear light ->
auto-expose on the face -> sRGB -> area-downsample -> sensor noise. Labels are the exact
projections of the same geometry with the output camera matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from synthgen import cabin
from synthgen.generate.procedural import model as fm
from synthgen.generate.procedural.cabin_view import draw_cabin
from synthgen.generate.procedural.control import draw_control
from synthgen.generate.procedural.raster import (
    QuadricHit,
    project,
    rasterize_mesh,
    raycast_ellipsoid,
    vertex_normals,
)
from synthgen.generate.procedural.texture import TEX, linear_to_srgb, make_look, skin_texture
from synthgen.geometry import gaze_vector, head_rotation
from synthgen.plan.spec import SceneSpec

AMBIENT_RGB = 0.32  # <= 0.5: flat light costs detectors 16-19 points (prototype measurements)


@dataclass
class Rendered:
    image: np.ndarray  # HxWx3 uint8 RGB, or HxW uint8 for NIR
    control: np.ndarray
    labels: dict[str, object]


@dataclass
class _Light:
    nir: bool
    direction: np.ndarray  # unit, towards the light (camera frame)
    intensity: float
    face_distance: float

    def irradiance(self, n: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Per-point light (P,) reaching surfaces with normals ``n`` at points ``p``."""
        diff = np.clip(n @ self.direction, 0.0, None)
        if not self.nir:
            return AMBIENT_RGB + (1.0 - AMBIENT_RGB) * self.intensity * diff
        dist = np.linalg.norm(p, axis=1)
        to_cam = -p / dist[:, None]
        coax = np.clip((n * to_cam).sum(1), 0.0, None)
        fall = (self.face_distance / dist) ** 2
        return 0.12 + 0.75 * coax * fall + 0.3 * self.intensity * diff

    def specular(self, n: np.ndarray, p: np.ndarray, power: float) -> np.ndarray:
        view = -p / np.linalg.norm(p, axis=1, keepdims=True)
        light = view if self.nir else self.direction[None, :]
        half = light + view
        half /= np.linalg.norm(half, axis=1, keepdims=True)
        return np.clip((n * half).sum(1), 0.0, None) ** power


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vector a to unit vector b (Rodrigues)."""
    v = np.cross(a, b)
    c = float(a @ b)
    if c < -0.999999:
        return np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


class Scene:
    """Geometry of one spec in the camera frame (metres) and its camera matrices."""

    def __init__(self, spec: SceneSpec, width: int, height: int, supersample: int, face_fraction: float) -> None:
        self.spec = spec
        self.w, self.h, self.ss = width, height, supersample
        self.k = cabin.intrinsics(spec.camera, spec.seat, width, height, face_fraction)
        s = supersample
        self.k_ss = self.k.copy()
        self.k_ss[:2, :2] *= s
        self.k_ss[:2, 2] = self.k[:2, 2] * s + (s - 1) / 2.0
        self.rot = head_rotation(spec.head_yaw, spec.head_pitch, spec.head_roll)
        self.eye = cabin.eye_position(spec.camera, spec.seat)
        self.gaze_cam = gaze_vector(spec.gaze_yaw, spec.gaze_pitch)
        self.gaze_local = self.rot.T @ self.gaze_cam
        g = self.gaze_local
        pitch_local = float(np.degrees(np.arcsin(np.clip(-g[1], -1, 1))))

        v = fm.shape_face(spec.identity_seed, spec.gender, spec.age)
        d, jaw, widen = fm.expression_offsets(spec.expression, spec.expression_intensity)
        v[: fm.N_MESH] += d
        v = fm.open_jaw(v, jaw)
        v = fm.widen_eyes(v, widen)
        v = fm.close_eyelids(v, spec.eye_openness, pitch_local)
        # Eyeballs and irises: rotate with the eye-in-head gaze.
        turn = _rotation_between(np.array([0.0, 0.0, -1.0]), g)
        model = fm.load_model()
        self.eyeball_local = []
        for j, c in enumerate((fm.R_PUPIL, fm.L_PUPIL)):
            centre = v[c] + np.array([0.0, 0.0, fm.EYEBALL_BEHIND_PUPIL])
            self.eyeball_local.append(centre)
            v[c] = centre + g * fm.EYEBALL_BEHIND_PUPIL
            ring = np.zeros((4, 3))
            ring[:, :2] = model.iris_ring_dirs[j] * fm.IRIS_RADIUS
            v[c + 1 : c + 5] = v[c] + ring @ turn.T
        self.local = v
        self.verts = self.to_cam(v)
        self.scale = 1.0 if spec.age >= 16 else 0.8 + 0.2 * spec.age / 16

    def to_cam(self, p: np.ndarray) -> np.ndarray:
        return np.asarray(p, float) @ self.rot.T + self.eye

    def labels(self) -> dict[str, object]:
        px = project(self.verts, self.k)
        mesh = px[: fm.N_MESH]
        lm68 = px[fm.load_model().lm68]
        box = [float(mesh[:, 0].min()), float(mesh[:, 1].min()), float(mesh[:, 0].max()), float(mesh[:, 1].max())]
        return {
            "req_landmarks_68": lm68.ravel().astype(float).tolist(),
            "req_landmarks_478": px.ravel().astype(float).tolist(),
            "req_pupils": px[[fm.R_PUPIL, fm.L_PUPIL]].ravel().astype(float).tolist(),
            "req_face_box": box,
            "req_gaze_vector": self.gaze_cam.astype(float).tolist(),
            "req_gaze_zone": cabin.gaze_zone(self.spec.camera, self.spec.seat, self.gaze_cam, self.eye),
        }, px


def _sample(tex: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear texture lookup for P points (cv2.remap wants maps under 32767 rows: fold them)."""
    n = len(uv)
    cols = 1024
    rows = -(-n // cols)
    maps = np.zeros((rows * cols, 2), np.float32)
    maps[:n] = uv
    maps = maps.reshape(rows, cols, 2)
    out = cv2.remap(tex, maps, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, tex.shape[2])[:n]


def _put(canvas: np.ndarray, hit: QuadricHit | None, colour: np.ndarray) -> None:
    if hit is not None:
        canvas[hit.ys, hit.xs] = colour


def render_spec(spec: SceneSpec, width: int, height: int, supersample: int = 2,
                face_fraction: float = 0.42) -> Rendered:
    sc = Scene(spec, width, height, supersample, face_fraction)
    labels, px = sc.labels()
    nir = spec.lighting == "nir"
    rng = np.random.default_rng([spec.seed, 7])
    look = make_look(spec.identity_seed, spec.gender, spec.age, spec.skin_tone)
    hs, ws = height * supersample, width * supersample
    shape = (hs, ws)
    k = sc.k_ss
    face_dist = float(np.linalg.norm(sc.eye))
    light = _Light(nir, gaze_vector(spec.light_azimuth, spec.light_elevation), spec.light_intensity, face_dist)
    tint = rng.uniform(0.6, 1.8, 3) if not nir else np.ones(3)
    canvas = draw_cabin(spec.camera, spec.seat, k, shape, nir, tint, face_dist)

    def grey(c: np.ndarray | float) -> np.ndarray:
        return np.full(3, float(np.mean(c))) if nir else np.asarray(c, float)

    skin = grey(0.62 - 0.012 * (spec.skin_tone - 1)) if nir else look.skin
    hair = grey(0.12 + 0.5 * float(look.hair.mean())) if nir else look.hair

    def shade(hit: QuadricHit | None, albedo: np.ndarray, spec_k: float = 0.0, power: float = 16) -> np.ndarray | None:
        if hit is None:
            return None
        e = light.irradiance(hit.normals, hit.points)
        col = albedo * e[:, None] if albedo.ndim == 2 else albedo[None, :] * e[:, None]
        if spec_k:
            col = col + spec_k * light.specular(hit.normals, hit.points, power)[:, None]
        return col

    rot = sc.rot
    s = sc.scale
    # Torso (in the cabin frame, it does not turn with the head).
    r_cab, _ = cabin.camera_pose(spec.camera, spec.seat)
    torso_c = cabin.to_camera(spec.camera, spec.seat, cabin.seat_eye(spec.seat) + np.array([0.0, 0.36 * s, -0.10]))
    hit = raycast_ellipsoid(torso_c, r_cab.T, np.array([0.22, 0.15, 0.13]) * s, k, shape)
    _put(canvas, hit, shade(hit, grey(look.clothes)))
    head_axes = rot
    ell = {
        "hair_back": (np.array([0.0, 0.05, 0.085]), np.array([0.098, 0.16, 0.092])),
        "neck": (np.array([0.0, 0.115, 0.080]), np.array([0.054, 0.10, 0.056])),
        "ear_r": (np.array([-0.074, 0.018, 0.083]), np.array([0.011, 0.029, 0.018])),
        "ear_l": (np.array([0.074, 0.018, 0.083]), np.array([0.011, 0.029, 0.018])),
        "skull": (np.array([0.0, -0.012, 0.072]), np.array([0.077, 0.108, 0.100])),
    }
    for name in ("hair_back", "neck", "ear_r", "ear_l", "skull"):
        if name == "hair_back" and not look.long_hair:
            continue
        c, r = ell[name]
        c = c * np.array([1.0 + 0.0, 1.0, 1.0]) * s
        hit = raycast_ellipsoid(sc.to_cam(c), head_axes, r * s, k, shape)
        if hit is None:
            continue
        if name == "skull":
            p = hit.local * r  # head-local offset from the skull centre
            loc = p + c
            hairline = (-0.052 + 0.045 * np.clip((np.abs(loc[:, 0]) - 0.058) / 0.02, 0, 1)
                        + 0.11 * np.clip((loc[:, 2] - 0.04) / 0.08, 0, 1))
            if look.bald > 0:
                crown = np.clip((loc[:, 2] - (0.0 + 0.09 * look.bald)) / 0.02, 0, 1)
                is_hair = (loc[:, 1] < hairline) & ((crown > 0.5) | (loc[:, 1] > -0.03))
            else:
                is_hair = loc[:, 1] < hairline
            alb = np.where(is_hair[:, None], hair[None, :], skin[None, :] * 0.92)
            col = shade(hit, alb, 0.03, 8)
        elif name == "hair_back":
            col = shade(hit, hair, 0.02, 8)
        else:
            col = shade(hit, skin * 0.9)
        _put(canvas, hit, col)

    # Mouth interior and teeth (under the lips, shown when the jaw opens).
    mv = sc.verts
    inner = np.array(fm.LIP_INNER_UPPER + fm.LIP_INNER_LOWER[::-1][1:-1])
    ip = np.round(project(mv[inner], k) * 16).astype(np.int32)
    cv2.fillPoly(canvas, [ip], tuple(grey(np.array([0.04, 0.01, 0.01])).tolist()), cv2.LINE_AA, shift=4)
    teeth_l = sc.local[fm.LIP_INNER_UPPER].copy()
    teeth = np.concatenate([teeth_l, (teeth_l + np.array([0.0, 0.0045, 0.002]))[::-1]])
    tp = np.round(project(sc.to_cam(teeth), k) * 16).astype(np.int32)
    mouth_mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mouth_mask, [ip], 1, cv2.LINE_8, shift=4)
    teeth_img = np.zeros(shape, np.uint8)
    cv2.fillPoly(teeth_img, [tp], 1, cv2.LINE_8, shift=4)
    sel = (mouth_mask & teeth_img).astype(bool)
    canvas[sel] = grey(np.array([0.45, 0.42, 0.36])) * 0.6

    # Eyeballs.
    bright_pupil = nir and rng.random() < 0.3
    for centre in sc.eyeball_local:
        hit = raycast_ellipsoid(sc.to_cam(centre), head_axes, np.full(3, fm.EYEBALL_RADIUS), k, shape)
        if hit is None:
            continue
        dirs = hit.local @ np.eye(3)  # unit-sphere frame == head frame
        cosang = dirs @ sc.gaze_local
        ang = np.degrees(np.arccos(np.clip(cosang, -1, 1)))
        sclera = grey(np.array([0.62, 0.55, 0.52]))
        iris = grey(look.iris) if not nir else np.full(3, 0.30)
        pupil = np.full(3, 0.9 if bright_pupil else 0.01)
        w_iris = np.clip((29.0 - ang) / 1.5, 0, 1)[:, None]
        w_pupil = np.clip((9.5 - ang) / 1.0, 0, 1)[:, None]
        limbus = np.exp(-((ang - 27.0) / 2.0) ** 2)[:, None]
        alb = sclera * (1 - w_iris) + iris * (1 - 0.5 * limbus) * w_iris
        alb = alb * (1 - w_pupil) + pupil * w_pupil
        col = shade(hit, alb * 0.8, 1.2 if nir else 0.8, 300)
        _put(canvas, hit, col)

    # Face mesh.
    model = fm.load_model()
    tris = model.triangles
    px_ss = project(mv[: fm.N_MESH], k)
    frags = rasterize_mesh(px_ss, mv[: fm.N_MESH, 2], tris, shape)
    normals = vertex_normals(mv[: fm.N_MESH], tris)
    normals = -normals if (normals[fm.NOSE_TIP] @ mv[fm.NOSE_TIP]) > 0 else normals
    n_pix = frags.interpolate(normals, tris)
    n_pix /= np.linalg.norm(n_pix, axis=1, keepdims=True)
    p_pix = frags.interpolate(mv[: fm.N_MESH], tris)
    uv = frags.interpolate(model.uv, tris) * TEX - 0.5
    tex = skin_texture(spec.identity_seed, spec.gender, int(round(spec.age / 5) * 5), spec.skin_tone, nir)
    alb = _sample(tex, uv)
    e = light.irradiance(n_pix, p_pix)
    col = alb * e[:, None] + (0.05 if not nir else 0.04) * light.specular(n_pix, p_pix, 12)[:, None]
    canvas[frags.ys, frags.xs] = col

    # Glasses.
    if spec.glasses != "none":
        _draw_glasses(canvas, sc, k, spec.glasses == "sunglasses", nir)

    # Auto-exposure on the face: mean irradiance -> 1, then a target brightness that keeps dark
    # skin visible (as a face-metered camera does).
    face_e = float(np.mean(e)) if len(e) else 1.0
    skin_lum = float(np.mean(skin))
    target = float(np.clip(skin_lum, 0.10, 0.42))
    exposure = target / max(skin_lum * face_e, 1e-6)
    img = linear_to_srgb(canvas * exposure).astype(np.float32)
    if supersample > 1:
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    img = img * 255.0 + rng.normal(0.0, 3.0 if nir else 1.8, img.shape[:2] + ((1,) if not nir else (1,)))
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    image = img[..., 0].copy() if nir else img
    control = draw_control(px, width, height)
    return Rendered(image, control, labels)


def _draw_glasses(canvas: np.ndarray, sc: Scene, k: np.ndarray, sun: bool, nir: bool) -> None:
    """Frames as 3D rounded rectangles in front of the eyes; sunglasses darken what is behind."""
    t = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    ex = 2.6  # superellipse exponent: rounded rectangle
    cx = np.sign(np.cos(t)) * np.abs(np.cos(t)) ** (2 / ex)
    cy = np.sign(np.sin(t)) * np.abs(np.sin(t)) ** (2 / ex)
    thick = max(1, int(round(1.1 * sc.ss * sc.w / 256)))
    frame_col = (0.015, 0.015, 0.015) if not nir else (0.05, 0.05, 0.05)
    lenses = []
    for sx in (-1.0, 1.0):
        centre = np.array([sx * 0.032, 0.004, -0.021])
        ring = np.stack([centre[0] + 0.025 * cx, centre[1] + 0.018 * cy, centre[2] + 0.004 * np.abs(cx)], 1)
        lenses.append(np.round(project(sc.to_cam(ring), k) * 16).astype(np.int32))
    if sun:
        mask = np.zeros(canvas.shape[:2], np.float32)
        cv2.fillPoly(mask, lenses, 1.0, cv2.LINE_AA, shift=4)
        m = mask[..., None]
        dark = 0.10 if not nir else 0.45
        canvas *= 1 - m * (1 - dark)
    cv2.polylines(canvas, lenses, True, frame_col, thick, cv2.LINE_AA, shift=4)
    bridge = np.array([[-0.008, -0.003, -0.024], [0.0, -0.005, -0.025], [0.008, -0.003, -0.024]])
    cv2.polylines(canvas, [np.round(project(sc.to_cam(bridge), k) * 16).astype(np.int32)], False,
                  frame_col, thick, cv2.LINE_AA, shift=4)
    # The temple arm on the side that faces the camera.
    for sx in (-1.0, 1.0):
        side_n = sc.rot @ np.array([sx, 0.0, 0.0])
        mid = sc.to_cam(np.array([sx * 0.065, 0.0, 0.03]))
        if side_n @ (-mid) > 0:
            arm = np.array([[sx * 0.057, -0.002, -0.019], [sx * 0.070, -0.002, 0.0], [sx * 0.074, 0.004, 0.075]])
            cv2.polylines(canvas, [np.round(project(sc.to_cam(arm), k) * 16).astype(np.int32)], False,
                          frame_col, thick, cv2.LINE_AA, shift=4)
