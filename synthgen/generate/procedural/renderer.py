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
from typing import NamedTuple

import cv2
import numpy as np

from synthgen import cabin
from synthgen.generate.procedural import conditions, expressions, eyestate, rolling, texture
from synthgen.generate.procedural import model as fm
from synthgen.generate.procedural.cabin_view import draw_cabin
from synthgen.generate.procedural.control import draw_control
from synthgen.generate.procedural.noise import standard_normal
from synthgen.generate.procedural.occluders import LENS_TRANSMITTANCE, lens_polygons, torso_shape
from synthgen.generate.procedural.raster import (
    MeshFragments,
    QuadricHit,
    hidden_by_mesh,
    project,
    rasterize_mesh,
    raycast_ellipsoid,
    rowdot,
    scatter_rows,
    vertex_normals,
)
from synthgen.generate.procedural.texture import (
    TEX,
    expression_folds,
    facial_hair_drawn,
    linear_to_srgb,
    make_look,
    skin_texture,
)
from synthgen.geometry import gaze_vector, head_rotation
from synthgen.spec import SceneSpec

# How far in front of a face landmark another part of the face must be to hide it: a vertex lies on its
# own surface, and near a silhouette the next triangle covers its pixel a few millimetres in front.
SELF_OCCLUSION_MM = 5.0
AMBIENT_RGB = 0.32  # <= 0.5: flat light costs detectors 16-19 points (prototype measurements)


class _Hole(NamedTuple):
    """Free samples inside a polygon: flat canvas indices, the box's corner and shape, and the
    samples' rows and columns inside the box."""

    flat: np.ndarray
    x0: int
    y0: int
    shape: tuple[int, int]
    ys: np.ndarray
    xs: np.ndarray


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
        diff = np.maximum(n @ self.direction, 0.0)
        if not self.nir:
            diff *= (1.0 - AMBIENT_RGB) * self.intensity  # in place, the same products and sum
            diff += AMBIENT_RGB
            return diff
        d2 = rowdot(p, p)
        coax = np.maximum(-rowdot(n, p), 0.0) / np.sqrt(d2)
        return 0.12 + 0.75 * coax * (self.face_distance**2 / d2) + 0.3 * self.intensity * diff

    def specular(self, n: np.ndarray, p: np.ndarray, power: float) -> np.ndarray:
        half = np.negative(p)  # in place from here: the same operations, fewer temporaries
        half /= np.sqrt(rowdot(p, p))[:, None]
        half += half if self.nir else self.direction[None, :]
        cos = rowdot(n, half)
        cos /= np.sqrt(rowdot(half, half))
        np.maximum(cos, 0.0, out=cos)
        return np.power(cos, power, out=cos)


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

    def __init__(self, spec: SceneSpec, width: int, height: int, supersample: int, face_fraction: float,
                 head_shift: np.ndarray | None = None) -> None:
        """``head_shift``: camera-frame metres the head stands off its posed place with the crop held
        (a rolling readout's instants: a head turning about the neck, ``rolling.head_shifts``)."""
        self.spec = spec
        self.w, self.h, self.ss = width, height, supersample
        self.k = cabin.intrinsics(spec.camera, spec.seat, width, height, face_fraction, spec.body_lean, spec.lean_to)
        s = supersample
        self.k_ss = self.k.copy()
        self.k_ss[:2, :2] *= s
        self.k_ss[:2, 2] = self.k[:2, 2] * s + (s - 1) / 2.0
        self.rot = head_rotation(spec.head_yaw, spec.head_pitch, spec.head_roll)
        self.eye = cabin.eye_position(spec.camera, spec.seat, spec.body_lean, spec.lean_to)
        if head_shift is not None:
            self.eye = self.eye + head_shift
        self.gaze_cam = gaze_vector(spec.gaze_yaw, spec.gaze_pitch)
        self.gaze_local = self.rot.T @ self.gaze_cam
        g = self.gaze_local
        pitch_local = float(np.degrees(np.arcsin(np.clip(-g[1], -1, 1))))

        v = fm.shape_face(spec.identity_seed, spec.gender, spec.age)
        heights = fm.eyeball_centre_heights(v)
        self.rest_local = v.copy()  # before the expression: where the teeth sit (skull and jaw)
        d, jaw, widen = expressions.expression_offsets(spec.expression, spec.expression_intensity)
        openness, jaw, widen = eyestate.adjust(spec.eye_state, spec.eye_openness, jaw, widen)
        self.jaw_open = jaw
        v[: fm.N_MESH] += d
        v = expressions.open_jaw(v, jaw)
        v = expressions.widen_eyes(v, widen)
        v = fm.close_eyelids(v, openness, pitch_local)
        # Eyeballs and irises: rotate with the eye-in-head gaze, each eye towards the fixation point
        # (vergence: a near target such as the cluster turns both eyes inwards).
        model = fm.load_model()
        self.eyeball_local = []
        self.eye_gaze_local = []
        fixation = fixation_distance(spec.camera, spec.seat, self.gaze_cam, self.eye)
        for j, c in enumerate((fm.R_PUPIL, fm.L_PUPIL)):
            centre = np.array([v[c, 0], heights[j], v[c, 2] + fm.EYEBALL_BEHIND_PUPIL])
            self.eyeball_local.append(centre)
            ge = g
            if fixation is not None:
                ge = g * fixation - centre  # head-local: origin at the mid-eye point
                ge = ge / np.linalg.norm(ge)
            self.eye_gaze_local.append(ge)
            turn = _rotation_between(np.array([0.0, 0.0, -1.0]), ge)
            v[c] = centre + ge * fm.EYEBALL_BEHIND_PUPIL
            ring = np.zeros((4, 3))
            ring[:, :2] = model.iris_ring_dirs[j] * fm.IRIS_RADIUS
            v[c + 1 : c + 5] = v[c] + ring @ turn.T
        self.local = v
        self.verts = self.to_cam(v)
        self.scale = fm.head_scale(spec.age)

    def to_cam(self, p: np.ndarray) -> np.ndarray:
        return np.asarray(p, float) @ self.rot.T + self.eye

    def labels(self) -> tuple[dict[str, object], np.ndarray]:
        """The geometric ``req_*`` columns, and the 478 landmark pixel positions they came from."""
        px = project(self.verts, self.k)
        return {
            **fm.landmark_labels(px),
            "req_gaze_vector": self.gaze_cam.astype(float).tolist(),
            "req_gaze_zone": cabin.gaze_zone(self.spec.camera, self.spec.seat, self.gaze_cam, self.eye),
            "req_camera_matrix": self.k.ravel().astype(float).tolist(),
        }, px


# Zones whose targets are near enough for vergence to show (about 0.3-1 m from the eyes); the
# road through the windshield and the world through the side windows are far: parallel eyes.
NEAR_ZONES = ("rearview_mirror", "instrument_cluster", "infotainment", "lap", "left_mirror", "right_mirror",
              "glovebox", "passenger_footwell", "front_occupant")


def fixation_distance(camera: str, seat: str, gaze_cam: np.ndarray, eye_cam: np.ndarray) -> float | None:
    """Distance (metres) from the mid-eye point to what the gaze ray hits first, when that is a near
    zone (``NEAR_ZONES``); None for far targets and misses (the eyes stay parallel)."""
    r_cab, _ = cabin.camera_pose(camera, seat)
    d = r_cab.T @ np.asarray(gaze_cam, float)
    d /= np.linalg.norm(d)
    origin = cabin.to_cabin(camera, seat, np.asarray(eye_cam, float))
    best: tuple[int, float, str] | None = None
    for z in cabin.zones(seat):
        t = z.hit(origin, d)
        if t is not None and (best is None or (z.priority, t) < best[:2]):
            best = (z.priority, t, z.name)
    if best is None or best[2] not in NEAR_ZONES:
        return None
    return float(best[1])


def _sample(tex: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear texture lookup for P points (cv2.remap wants maps under 32767 rows: fold them)."""
    n = len(uv)
    cols = 1024
    rows = -(-n // cols)
    flat = np.zeros((rows * cols, 2), np.float32)
    flat[:n] = uv
    maps = flat.reshape(rows, cols, 2)
    out = np.asarray(cv2.remap(tex, maps, None, cv2.INTER_LINEAR,  # type: ignore[call-overload]
                               borderMode=cv2.BORDER_REPLICATE))
    return out.reshape(-1, tex.shape[2])[:n]


def _teeth(sc: Scene, k: np.ndarray, x0: int, y0: int, shape: tuple[int, int]) -> np.ndarray:
    """Teeth seen through the mouth opening, as (H, W, 4): colour and coverage in the mouth's box.

    Why anchored to the rest face, not to the lips: upper teeth belong to the skull and lower teeth
    to the jaw, so a raised upper lip (disgust, AU10) or pulled corners (happiness, AU12) uncover
    the upper teeth, and an open jaw (surprise, AU26) shows a dark cavity between the two rows;
    teeth that moved with the lips showed the same band whatever the expression."""
    out = np.zeros((*shape, 4), np.float32)
    rest = sc.rest_local
    up = rest[fm.LIP_INNER_UPPER]
    lo = rest[fm.LIP_INNER_LOWER]
    half = float(np.abs(up[:, 0]).max())
    xs = np.linspace(-0.8 * half, 0.8 * half, 12)
    order = np.argsort(up[:, 0])
    y_up = np.interp(xs, up[order, 0], up[order, 1])
    order = np.argsort(lo[:, 0])
    y_lo = np.interp(xs, lo[order, 0], lo[order, 1]) + 1.1 * sc.jaw_open
    recede = 0.004 * (xs / half) ** 2  # the arch: side teeth further back
    z = float(up[:, 2].mean()) + 0.003 + recede
    for top, bottom, dz in ((y_up - 0.004, y_up + 0.0022, 0.0),  # upper incisors, edge ~2 mm below the lip line
                            (y_lo - 0.0015, y_lo + 0.004, 0.35 * sc.jaw_open)):  # lower teeth ride on the jaw
        poly = np.concatenate([np.stack([xs, top, z + dz], 1), np.stack([xs, bottom, z + dz], 1)[::-1]])
        tp = np.round((project(sc.to_cam(poly), k) - [x0, y0]) * 16).astype(np.int32)
        mask = np.zeros(shape, np.float32)
        cv2.fillPoly(mask, [tp], 1.0, cv2.LINE_AA, shift=4)
        out[..., 3] = np.maximum(out[..., 3], mask)
    # Enamel colour, darker towards the mouth corners (less light reaches the side teeth).
    cols = np.arange(shape[1], dtype=np.float32)
    centre = project(sc.to_cam(np.array([[0.0, float(up[:, 1].mean()), float(up[:, 2].mean())]])), k)[0, 0] - x0
    span = max(float(np.ptp(project(sc.to_cam(up), k)[:, 0])) / 2, 1.0)
    fall = np.clip(1 - 0.6 * ((cols - centre) / span) ** 2, 0.25, 1.0)
    out[..., :3] = np.array([0.50, 0.46, 0.40], np.float32) * fall[None, :, None]
    return out


class _Frame:
    """The supersampled canvas being drawn for one spec, and what every layer needs: the light,
    the identity's look, which pixels are still free (layers go front to back), the random stream."""

    def __init__(self, sc: Scene, spec: SceneSpec, shading: str = "pixel") -> None:
        self.sc, self.spec = sc, spec
        # Skin, head and body are shaded once per output pixel ("pixel", see raster.shading_samples)
        # or once per supersample ("sample"); the eyeballs always per sample: iris and pupil span only
        # a few output pixels and carry the gaze.
        self.block = sc.ss if shading == "pixel" else 1
        self.nir = spec.lighting == "nir"
        self.rng = np.random.default_rng([spec.seed, 7])
        self.look = make_look(spec.identity_seed, spec.gender, spec.age, spec.skin_tone)
        # The skin texture is drawn (and cached) per 5-year age bin: its look decides the stubble.
        self.age_bin = int(round(spec.age / 5) * 5)
        self.facial_hair = facial_hair_drawn(
            spec.facial_hair, make_look(spec.identity_seed, spec.gender, self.age_bin, spec.skin_tone), spec.age)
        self.shape = (sc.h * sc.ss, sc.w * sc.ss)
        self.k = sc.k_ss
        face_dist = float(np.linalg.norm(sc.eye))
        self.light = _Light(self.nir, gaze_vector(spec.light_azimuth, spec.light_elevation).astype(np.float32),
                            spec.light_intensity, face_dist)
        tint = self.rng.uniform(0.6, 1.8, 3) if not self.nir else np.ones(3)
        self.canvas = draw_cabin(spec.camera, spec.seat, self.k, self.shape, self.nir, tint, face_dist)
        self.free = np.ones(self.shape, bool)
        self.free_flat = self.free.reshape(-1)
        look = self.look
        self.skin = self.grey(0.62 - 0.012 * (spec.skin_tone - 1)) if self.nir else look.skin.astype(np.float32)
        self.hair = self.grey(0.10 + 0.45 * float(look.hair.mean())) if self.nir else look.hair.astype(np.float32)
        self.face_irradiance = np.ones(1, np.float32)

    def grey(self, c: np.ndarray | float) -> np.ndarray:
        return np.full(3, float(np.mean(c)), np.float32) if self.nir else np.asarray(c, np.float32)

    def put(self, flat: np.ndarray, col: np.ndarray) -> None:
        scatter_rows(self.canvas, flat, col)
        self.free_flat[flat] = False

    def put_layer(self, layer: QuadricHit | MeshFragments, col: np.ndarray, keep: np.ndarray | None = None) -> None:
        """Write a layer's colours (one per shaded sample) to every sample it covers (``keep``: the
        covered samples to write)."""
        col = layer.expand(col)
        if keep is None:
            self.put(layer.flat, col)
        else:
            self.put(layer.flat[keep], col[keep])

    def shade(self, hit: QuadricHit, albedo: np.ndarray, spec_k: float = 0.0, power: float = 16) -> np.ndarray:
        e = self.light.irradiance(hit.normals, hit.points)
        col = albedo * e[:, None]
        if spec_k:
            col = col + spec_k * self.light.specular(hit.normals, hit.points, power)[:, None]
        return col

    def draw_face(self) -> None:
        """The face mesh (holes at the eyes and the mouth), textured and lit per pixel."""
        sc, spec, k = self.sc, self.spec, self.k
        model = fm.load_model()
        tris = model.triangles
        mv = sc.verts
        face_px = project(mv[: fm.N_MESH], k)
        frags = rasterize_mesh(face_px, mv[: fm.N_MESH, 2], tris, self.shape, self.block)
        self.face_ids, self.face_px = frags.id_buffer, face_px
        normals = vertex_normals(mv[: fm.N_MESH], tris)
        if normals[fm.NOSE_TIP] @ mv[fm.NOSE_TIP] > 0:
            normals = -normals
        attrs = frags.interpolate(np.concatenate([normals, mv[: fm.N_MESH], model.uv * TEX - 0.5], 1), tris)
        n_pix = np.ascontiguousarray(attrs[:, :3])
        n_pix /= np.sqrt(rowdot(n_pix, n_pix))[:, None]
        p_pix = np.ascontiguousarray(attrs[:, 3:6])
        level = _mip_level(face_px, model.uv, self.block)
        tex = skin_texture(spec.identity_seed, spec.gender, self.age_bin, spec.skin_tone, self.nir, self.facial_hair,
                           level)
        if spec.expression != "neutral" and spec.expression_intensity > 0:
            folds = expression_folds(spec.expression, level)
            tex = tex.copy()  # the cached map stays as it is
            tex[..., :3] *= (1 - 0.6 * spec.expression_intensity * folds)[..., None]
        uv = attrs[:, 6:8]
        if level:
            uv = (uv + 0.5) / (1 << level) - 0.5
        sampled = _sample(tex, uv)  # albedo RGB and gloss
        e = self.light.irradiance(n_pix, p_pix)
        self.face_irradiance = e
        sheen = self.light.specular(n_pix, p_pix, 12)
        sheen *= sampled[:, 3]
        sheen *= 0.05
        col = sampled[:, :3] * e[:, None]
        col += sheen[:, None]
        self.put_layer(frags, col)

    def self_occluded(self) -> np.ndarray:
        """Per landmark (478), whether the face itself hides it (``raster.hidden_by_mesh`` on the face
        mesh's ID buffer): the far eye and cheek behind the nose on a turned head, the iris under a
        closing lid. Mesh points need the surface SELF_OCCLUSION_MM in front of them; iris points
        (on the eyeball, behind the mesh) any face triangle."""
        sc = self.sc
        margin = np.full(len(sc.verts), SELF_OCCLUSION_MM / 1000.0)
        margin[fm.N_MESH :] = 0.0
        return hidden_by_mesh(project(sc.verts, self.k), sc.verts[:, 2], self.face_ids, self.face_px,
                              sc.verts[: fm.N_MESH, 2], fm.load_model().triangles, margin)

    def draw_eyes(self) -> None:
        """Eyeballs (sclera, iris with a dark limbus, pupil), seen through the eye holes."""
        sc = self.sc
        bright_pupil = self.nir and self.rng.random() < 0.3
        for side, (centre, gaze) in enumerate(zip(sc.eyeball_local, sc.eye_gaze_local, strict=True)):
            hit = raycast_ellipsoid(sc.to_cam(centre), sc.rot, np.full(3, fm.EYEBALL_RADIUS), self.k, self.free)
            if hit is None:
                continue
            ang = np.degrees(np.arccos(np.clip(hit.local @ gaze.astype(np.float32), -1, 1)))
            sclera = self.grey(np.array([0.78, 0.70, 0.66]))  # near-white: the eye corners stand out from skin
            iris = np.full(3, 0.30, np.float32) if self.nir else self.look.iris.astype(np.float32)
            pupil = np.full(3, 0.9 if bright_pupil else 0.01, np.float32)
            w_iris = np.clip((29.0 - ang) / 1.5, 0, 1)[:, None]
            w_pupil = np.clip((9.5 - ang) / 1.0, 0, 1)[:, None]
            limbus = np.exp(-(((ang - 27.0) / 2.0) ** 2))[:, None]
            a = sclera * (1 - w_iris) + iris * (1 - 0.5 * limbus) * w_iris
            a = a * (1 - w_pupil) + pupil * w_pupil
            col = self.shade(hit, a * 0.8, 1.2 if self.nir else 0.8, 300)
            col *= _lid_shadow(hit, self.k, self.free.shape[1])[:, None]
            white = w_iris[:, 0] == 0
            tissue = self.grey((np.median(col[white], 0) if white.any() else np.median(col, 0))
                               * np.array([0.62, 0.36, 0.36], np.float32))
            col = hit.expand(col)
            self._canthal_tissue(side, hit.flat, col, tissue)
            self.put(hit.flat, col)
            self.draw_canthi(side, tissue)

    def _canthal_tissue(self, side: int, flat: np.ndarray, col: np.ndarray, tissue: np.ndarray) -> None:
        """Blend the eyeball's samples next to each canthus into ``tissue`` (in place): the caruncle
        and the plica at the inner corner (within 0.16 eye widths, about 5 mm) and the conjunctiva in
        the outer angle (0.08), which lie in front of the globe and show at every gaze. Without them an
        anatomical lid opening, which the eyeball fills to the corners, had white corners."""
        ids = [33, 133] if side == 0 else fm.load_model().left([33, 133])
        outer, inner = project(self.sc.verts[ids], self.k)
        width = float(np.linalg.norm(inner - outer))
        ys, xs = np.divmod(flat, self.shape[1])
        pts = np.stack([xs, ys], 1).astype(np.float32)
        w = np.zeros(len(flat), np.float32)
        for corner, reach in ((inner, 0.16), (outer, 0.08)):
            d = np.sqrt(((pts - corner.astype(np.float32)) ** 2).sum(1)) / max(width, 1e-6)
            w = np.maximum(w, np.clip((reach - d) / (0.3 * reach), 0, 1))
        near = w > 0
        col[near] += w[near, None] * (tissue - col[near])

    def draw_canthi(self, side: int, tissue: np.ndarray) -> None:
        """The eye opening's tissue that the eyeball does not fill (caruncle and conjunctiva at the
        corners, the socket under raised lids): moist, pinker and darker than the lit sclera next
        to it. Why: the eyeball is narrower than the lid opening; without this layer the skull behind
        showed through as pale skin-coloured wedges at both canthi and a crescent under a raised lid,
        so landmark networks placed the eye corners by the white of the eye, which moves with the
        gaze, instead of by the canthi, which do not."""
        ids = fm.R_EYE_UPPER + fm.R_EYE_LOWER[::-1][1:-1]
        if side:
            ids = fm.load_model().left(ids)
        hole = self.free_inside(ids)
        if hole is not None:
            self.put(hole.flat, np.broadcast_to(tissue, (len(hole.flat), 3)).astype(np.float32))

    def free_inside(self, ids: list[int]) -> _Hole | None:
        """The still-free samples inside the polygon of mesh vertices ``ids`` (a hole in the face
        mesh: the lid opening, the lips' opening); None when none is free."""
        shape = self.shape
        ip = project(self.sc.verts[ids], self.k)
        x0, y0 = np.floor(ip.min(0)).astype(int) - 1
        x1, y1 = np.ceil(ip.max(0)).astype(int) + 2
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])
        if x1 <= x0 or y1 <= y0:
            return None
        hole = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(hole, [np.round((ip - [x0, y0]) * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
        ys, xs = np.nonzero(hole.astype(bool) & self.free[y0:y1, x0:x1])
        if not len(ys):
            return None
        return _Hole((ys + y0) * shape[1] + xs + x0, int(x0), int(y0), (y1 - y0, x1 - x0), ys, xs)

    def draw_mouth(self) -> None:
        """Mouth cavity and teeth, seen through the inner lips' hole."""
        mouth = self.free_inside(fm.LIP_INNER_UPPER + fm.LIP_INNER_LOWER[::-1][1:-1])
        if mouth is None:
            return
        tcol = _teeth(self.sc, self.k, mouth.x0, mouth.y0, mouth.shape)
        cavity = self.grey(np.array([0.035, 0.008, 0.008]))
        w = tcol[mouth.ys, mouth.xs, 3:4]
        col = tcol[mouth.ys, mouth.xs, :3] * w + cavity * (1 - w)
        self.put(mouth.flat, self.grey(col) if self.nir else col)

    def draw_head_and_body(self) -> None:
        """Skull with hair, ears, neck, long hair and torso (quadrics), front to back."""
        sc, spec, k, look, free = self.sc, self.spec, self.k, self.look, self.free
        s, rot, skin, hair = sc.scale, sc.rot, self.skin, self.hair
        skull_c = np.array([0.0, -0.012, 0.072]) * s
        skull_r = np.array([0.077, 0.108, 0.100]) * s
        block = self.block
        skull = raycast_ellipsoid(sc.to_cam(skull_c), rot, skull_r, k, free, block)
        # Ears and skull resolved by depth, as neck and torso are. Why: drawn front to back with the
        # skull first, an ear showed only where it stuck out past the skull's outline, so a head
        # turned 35-60 degrees, whose near ear lies in front of the skull, had none (renderer <= 0.8.4).
        z_skull = None if skull is None else skull.depth_buffer(free.size)
        ears = [raycast_ellipsoid(sc.to_cam(np.array([sx * 0.074, 0.018, 0.083]) * s), rot,
                                  np.array([0.011, 0.029, 0.018]) * s, k, free, block) for sx in (-1.0, 1.0)]
        for ear in ears:
            if ear is not None:
                front = None if z_skull is None else ear.in_front_of(z_skull)
                self.put_layer(ear, self.shade(ear, skin * 0.85), front)
        if skull is not None:
            loc = skull.local * skull_r + skull_c  # head-local position
            hairline = ((-0.052 + look.hairline) * s
                        + 0.045 * np.clip((np.abs(loc[:, 0]) - 0.058 * s) / 0.02, 0, 1)
                        + 0.11 * np.clip((loc[:, 2] - 0.04 * s) / 0.08, 0, 1))
            is_hair = loc[:, 1] < hairline
            if look.bald > 0:
                crown = loc[:, 2] > 0.09 * look.bald * s
                is_hair &= crown | (loc[:, 1] > -0.03 * s)
            a = np.where(is_hair[:, None], hair[None, :], skin[None, :] * 0.92)
            self.put_layer(skull, self.shade(skull, a, 0.03, 8), self.free_flat[skull.flat])
        # Neck and torso overlap where the chest is in front of the neck's base: resolve by depth.
        r_cab, _ = cabin.camera_pose(spec.camera, spec.seat)
        torso_offset, torso_radii = torso_shape(fm.body_scale(spec.age))
        torso_c = cabin.to_camera(spec.camera, spec.seat, cabin.chest_anchor(spec.seat, spec.body_lean, spec.lean_to) + torso_offset)
        torso = raycast_ellipsoid(torso_c, r_cab.T, torso_radii, k, free, block)
        neck = raycast_ellipsoid(sc.to_cam(np.array([0.0, 0.13, 0.095]) * s), rot,
                                 np.array([0.047, 0.11, 0.05]) * s, k, free, block)
        if neck is not None:
            keep = np.ones(len(neck.flat), bool)
            if torso is not None:
                keep = neck.in_front_of(torso.depth_buffer(free.size))
            shadow = np.clip((neck.points[:, 1] - sc.verts[fm.CHIN, 1]) / 0.03, 0.35, 1.0)[:, None]
            self.put_layer(neck, self.shade(neck, skin * 0.8) * shadow, keep)
        if look.long_hair:
            radii = np.array([0.09 * look.hair_volume, 0.145, 0.085]) * s
            hit = raycast_ellipsoid(sc.to_cam(np.array([0.0, 0.04, 0.10]) * s), rot, radii, k, free, block)
            if hit is not None:
                self.put_layer(hit, self.shade(hit, hair, 0.02, 8))
        if torso is not None:
            self.put_layer(torso, self.shade(torso, self.grey(self.look.clothes)), self.free_flat[torso.flat])

    def finish(self) -> np.ndarray:
        """The 8-bit image: ``encode`` of ``develop``."""
        return self.encode(*self.develop())

    def develop(self) -> tuple[np.ndarray, float]:
        """The canvas downsampled in linear light, and the exposure a face-metered camera picks for
        it (mean face irradiance -> 1, then a target brightness that keeps dark skin visible)."""
        e = self.face_irradiance
        face_e = float(np.mean(e)) if len(e) else 1.0
        skin_lum = float(np.mean(self.skin))
        exposure = float(np.clip(skin_lum, 0.10, 0.42)) / max(skin_lum * face_e, 1e-6)
        canvas = self.canvas
        if self.nir:  # one channel before the resize: a third of its cost (renderer >= 0.8.6)
            canvas = np.ascontiguousarray(canvas[..., 0])
        if self.sc.ss > 1:
            canvas = cv2.resize(canvas, (self.sc.w, self.sc.h), interpolation=cv2.INTER_AREA)
        if canvas.ndim == 2:
            canvas = canvas[..., None]
        return canvas, exposure

    def encode(self, canvas: np.ndarray, exposure: float) -> np.ndarray:
        """Expose a developed canvas, sRGB-encode it and add sensor noise (this frame's draws)."""
        scaled = canvas * np.float32(exposure * (_LUT_N - 1))
        np.clip(scaled, 0, _LUT_N - 1, out=scaled)
        code = np.take(_SRGB_LUT, scaled.astype(np.int32))
        noise = standard_normal(self.rng, code.shape)
        noise *= 3.0 if self.nir else 1.8
        code += noise  # in place: (code + noise) + 0.5, clipped, as one expression would
        code += 0.5
        img = np.clip(code, 0, 255, out=code).astype(np.uint8)
        return img[..., 0].copy() if self.nir else img


# The upper lid's margin and lashes shade the eyeball just below them (about 1 mm). Why: in real eyes
# this dark band marks the lid edge wherever the lid stands, so it is what landmark models follow
# when the lids half close; without it a half-closed lid over a bright sclera read as open.
LID_SHADOW_MM = 1.0
LID_SHADOW_DEPTH = 0.6


def _lid_shadow(hit: QuadricHit, k: np.ndarray, width: int) -> np.ndarray:
    """Per eyeball pixel, the factor (<= 1) of the shadow cast by the upper lid: it depends on how
    many pixels below the lid margin (the first non-eyeball pixel above, same column) it lies."""
    ys, xs = np.divmod(hit.flat, width)
    y0, x0 = int(ys.min()), int(xs.min())
    h, w = int(ys.max()) - y0 + 1, int(xs.max()) - x0 + 1
    mask = np.zeros((h + 1, w), bool)  # row 0: the lid above the top eyeball pixel
    mask[ys - y0 + 1, xs - x0] = True
    rows = np.arange(h + 1)[:, None]
    top = np.maximum.accumulate(np.where(mask, -1, rows), axis=0)  # last lid row at or above
    dist = (rows - top)[ys - y0 + 1, xs - x0].astype(np.float32) - 0.5
    px_per_mm = float(k[1, 1]) / max(float(hit.points[:, 2].mean()), 1e-3) / 1000.0
    return 1.0 - LID_SHADOW_DEPTH * np.exp(-dist / (LID_SHADOW_MM * px_per_mm))


def _mip_level(face_px: np.ndarray, uv: np.ndarray, block: int) -> int:
    """The skin texture's level (0: full, 1: half resolution) for shading one sample per ``block``
    x ``block`` canvas pixels: half resolution when the shaded samples lie about two texels apart,
    so that they read the texture's average there rather than alias its detail."""
    if block <= 1:
        return 0
    texels = float(np.ptp(uv[:, 0])) * TEX
    span = max(float(np.ptp(face_px[:, 0])), 1.0)  # canvas samples across the face
    return 1 if block * texels / span >= 1.5 else 0


def clear_identity_caches() -> None:
    """Forget every per-identity cache (looks, face shapes, texture fields, texture planes, textures and their mip
    levels), so that the next renders cost what a new process's do: for benchmarks and tests."""
    for cached in (texture.make_look, texture._identity_fields, texture._skin_planes, texture._skin_texture,
                   texture._skin_texture_mip,
                   fm._shaped_face):
        cached.cache_clear()


def render_spec(spec: SceneSpec, width: int, height: int, supersample: int = 2,
                face_fraction: float = 0.42, shading: str = "pixel") -> Rendered:
    """Render one spec, then the sensor's finish (noise by light level, blur, JPEG). Under a rolling
    readout (``rolling``) the scene is drawn at a few instants and its rows composed in linear
    light, exposed once at the spec's own instant's exposure, with that instant's sensor noise."""
    if rolling.is_rolling(spec):
        subs = rolling.sub_specs(spec)
        drawn = [_draw(s, width, height, supersample, face_fraction, shading, shift)
                 for s, shift in zip(subs, rolling.head_shifts(spec, subs), strict=True)]
        mid = drawn[len(drawn) // 2][0]
        developed = [frame.develop() for frame, _, _ in drawn]
        image = mid.encode(rolling.blend_rows([c for c, _ in developed]), developed[len(drawn) // 2][1])
        labels, px = rolling.compose_labels(spec, [lab for _, lab, _ in drawn], height)
        return Rendered(conditions.finish(image, spec), draw_control(px, width, height), labels)
    out = render_clean(spec, width, height, supersample, face_fraction, shading)
    return Rendered(conditions.finish(out.image, spec), out.control, out.labels)


def render_clean(spec: SceneSpec, width: int, height: int, supersample: int = 2,
                 face_fraction: float = 0.42, shading: str = "pixel") -> Rendered:
    """The scene at the spec's instant, before the sensor's finish (``_draw``, developed, encoded)."""
    frame, labels, px = _draw(spec, width, height, supersample, face_fraction, shading)
    return Rendered(frame.finish(), draw_control(px, width, height), labels)


def _draw(spec: SceneSpec, width: int, height: int, supersample: int, face_fraction: float,
          shading: str, head_shift: np.ndarray | None = None) -> tuple[_Frame, dict[str, object], np.ndarray]:
    """Draw the scene on a supersampled linear canvas; its labels and 478 landmark pixels. Per-pixel
    layers go front to back (face mesh, eyeballs, mouth, skull, ears, neck, hair, torso) over the
    cabin, each computing only pixels no nearer layer took; glasses are drawn over everything.
    ``shading``: "pixel" shades skin, head and body once per output pixel with coverage per
    supersample; "sample" shades every supersample (as renderer 0.6 did)."""
    sc = Scene(spec, width, height, supersample, face_fraction, head_shift)
    labels, px = sc.labels()
    frame = _Frame(sc, spec, shading)
    frame.draw_face()
    frame.draw_eyes()
    frame.draw_mouth()
    frame.draw_head_and_body()
    if spec.glasses != "none":
        _draw_glasses(frame.canvas, sc, frame.k, spec.glasses == "sunglasses", frame.nir)
    # Driver-monitoring conditions (occluders, belt, IR lenses, light band) and their labels.
    labels.update(conditions.draw(frame.canvas, sc, frame.k, frame.light, frame.skin, frame.hair, frame.nir,
                                  frame.self_occluded()))
    labels["req_facial_hair"] = frame.facial_hair
    return frame, labels, px


_LUT_N = 4096
_SRGB_LUT = (linear_to_srgb(np.linspace(0.0, 1.0, _LUT_N)) * 255.0).astype(np.float32)


def _draw_glasses(canvas: np.ndarray, sc: Scene, k: np.ndarray, sun: bool, nir: bool) -> None:
    """Frames as 3D rounded rectangles in front of the eyes (``occluders.lens_rings``, sized to the
    face); sunglasses darken what is behind."""
    size = fm.face_growth(sc.spec.age)
    thick = max(1, int(round(1.1 * sc.ss * sc.w / 256)))
    frame_col = (0.015, 0.015, 0.015) if not nir else (0.05, 0.05, 0.05)
    lenses = [np.round(p * 16).astype(np.int32) for p in lens_polygons(sc.to_cam, k, size)[0]]
    if sun:  # darken inside the lenses' bounding box only (outside it the factor is exactly 1)
        lo = np.maximum(np.floor(np.concatenate(lenses).min(0) / 16).astype(int) - 2, 0)
        hi = np.ceil(np.concatenate(lenses).max(0) / 16).astype(int) + 3
        window = canvas[lo[1] : hi[1], lo[0] : hi[0]]
        if window.size:
            mask = np.zeros(window.shape[:2], np.float32)
            cv2.fillPoly(mask, [p - lo * 16 for p in lenses], 1.0, cv2.LINE_AA, shift=4)
            dark = LENS_TRANSMITTANCE["sunglasses"][1 if nir else 0]
            window *= 1 - mask[..., None] * (1 - dark)
    cv2.polylines(canvas, lenses, True, frame_col, thick, cv2.LINE_AA, shift=4)
    bridge = np.array([[-0.008, -0.003, -0.024], [0.0, -0.005, -0.025], [0.008, -0.003, -0.024]]) * size
    cv2.polylines(canvas, [np.round(project(sc.to_cam(bridge), k) * 16).astype(np.int32)], False,
                  frame_col, thick, cv2.LINE_AA, shift=4)
    # The temple arm on the side that faces the camera.
    for sx in (-1.0, 1.0):
        side_n = sc.rot @ np.array([sx, 0.0, 0.0])
        mid = sc.to_cam(np.array([sx * 0.065, 0.0, 0.03]) * size)
        if side_n @ (-mid) > 0:
            arm = np.array([[sx * 0.057, -0.002, -0.019], [sx * 0.070, -0.002, 0.0], [sx * 0.074, 0.004, 0.075]]) * size
            cv2.polylines(canvas, [np.round(project(sc.to_cam(arm), k) * 16).astype(np.int32)], False,
                          frame_col, thick, cv2.LINE_AA, shift=4)
