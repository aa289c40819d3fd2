"""Occluders (masks, caps, hair fringes, hands, phones, drinks, cigarettes), IR-blocking lenses and
seat belts, drawn into the renderer's linear canvas with a depth test against the head.

Why a depth buffer: the labels must say exactly which landmarks an occluder hides. Every occluder is
built from exact primitives (ray-cast ellipsoids and boxes, offset patches of the face mesh) whose
per-pixel depth is known; a pixel shows the occluder when it is nearer than the face and skull there,
and a landmark is hidden when the occluder's depth at its pixel is nearer than the landmark itself.
Positions are head-local (metres; x towards the subject's left, y down, the face looking along -z;
origin between the pupils) so hands and worn items move with the head; a phone held low is placed
relative to the seat instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from synthgen import cabin
from synthgen.cabin import PHONE_IN_HAND
from synthgen.generate.procedural import model as fm
from synthgen.generate.procedural.raster import (
    box_window,
    project,
    rasterize_mesh,
    raycast_ellipsoid,
    rowdot,
    vertex_normals,
)
from synthgen.geometry import head_rotation

# Linear albedos (RGB) and NIR reflectances of the materials.
MATERIALS: dict[str, tuple[tuple[float, float, float], float]] = {
    "mask": ((0.45, 0.60, 0.75), 0.70),
    "cap": ((0.06, 0.08, 0.18), 0.35),
    "phone": ((0.02, 0.02, 0.025), 0.08),
    "cup": ((0.72, 0.68, 0.60), 0.75),
    "bottle": ((0.20, 0.42, 0.25), 0.55),
    "cigarette": ((0.85, 0.84, 0.78), 0.80),
    "filter": ((0.65, 0.42, 0.18), 0.60),
    "vape": ((0.25, 0.25, 0.28), 0.30),
    "belt": ((0.04, 0.04, 0.045), 0.12),
    "lens_ir": ((0.03, 0.03, 0.035), 0.03),
}

# Lens transmittance (visible, NIR) by glasses kind. Sunglasses keep 10% of visible light and 75% of
# NIR: Euro NCAP's DSM protocol expects monitoring to work through sunglasses of over 70% NIR
# transmittance (0.6.0 kept 45%, between its two classes). IR-blocking lenses keep under 15% of NIR
# (here 3%): the camera sees black and the system must say it cannot see the eyes.
LENS_TRANSMITTANCE: dict[str, tuple[float, float]] = {
    "none": (1.0, 1.0), "glasses": (0.92, 0.92), "sunglasses": (0.10, 0.75), "ir_blocking": (0.20, 0.03),
}
# A lens at or under this transmittance hides the eyes from the camera.
OPAQUE_TRANSMITTANCE = 0.15


@dataclass
class Part:
    """A primitive of an occluder: ellipsoid, box or face-mesh patch, in the head or seat frame."""

    kind: str  # ellipsoid | box | patch
    material: str
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    size: tuple[float, float, float] = (0.01, 0.01, 0.01)  # radii or half sizes (m)
    rot: tuple[float, float, float] = (0.0, 0.0, 0.0)  # yaw, pitch, roll (deg) in its frame
    frame: str = "head"  # head | seat
    patch: str = ""  # patch name for kind == "patch"


def _hand(centre: tuple[float, float, float], rot: tuple[float, float, float] = (0, 0, 0),
          size: float = 1.0) -> list[Part]:
    """A hand: palm and a finger block (ellipsoids), skin coloured."""
    cx, cy, cz = centre
    return [Part("ellipsoid", "skin", (cx, cy, cz), (0.042 * size, 0.048 * size, 0.016 * size), rot),
            Part("ellipsoid", "skin", (cx, cy - 0.05 * size, cz - 0.004), (0.038 * size, 0.035 * size, 0.012 * size), rot)]


def _forearm(start: tuple[float, float, float]) -> Part:
    x, y, z = start
    return Part("ellipsoid", "skin", (x, y + 0.13, z + 0.03), (0.03, 0.13, 0.03), (0, -15, 0))


def occluder_parts(name: str) -> list[Part]:
    """The primitives of an occluder (see vocab.Occluder). Placed on the subject's right side where
    there is a side (a right-handed occupant)."""
    if name == "none":
        return []
    if name == "face_mask":
        return [Part("patch", "mask", patch="mask")]
    if name == "hair_fringe":
        return [Part("patch", "hair", patch="fringe")]
    if name == "cap":
        return [Part("ellipsoid", "cap", (0.0, -0.085, 0.06), (0.086, 0.062, 0.108)),
                Part("ellipsoid", "cap", (0.0, -0.046, -0.055), (0.08, 0.005, 0.058), (0, -10, 0))]
    if name == "hand_chin":
        return _hand((0.0, 0.125, -0.03), (0, 70, 0)) + [_forearm((0.0, 0.14, -0.03))]
    if name == "hand_mouth":
        return _hand((0.0, 0.075, -0.045)) + [_forearm((0.0, 0.12, -0.03))]
    if name == "eye_rub":
        return [Part("ellipsoid", "skin", (-0.033, 0.008, -0.032), (0.026, 0.022, 0.014)),
                Part("ellipsoid", "skin", (-0.04, 0.05, -0.035), (0.03, 0.045, 0.02)),
                _forearm((-0.045, 0.09, -0.03))]
    if name in ("phone_ear", "phone_ear_left"):
        sx = -1.0 if name == "phone_ear" else 1.0  # the right hand at the right ear, or the left at the left
        return [Part("box", "phone", (sx * 0.088, 0.035, 0.055), (0.0045, 0.073, 0.036), (0, -25, 0)),
                Part("ellipsoid", "skin", (sx * 0.098, 0.07, 0.05), (0.018, 0.05, 0.035), (0, -25, 0)),
                _forearm((sx * 0.105, 0.10, 0.06))]
    if name == "phone_hand":
        x, y, z = PHONE_IN_HAND
        return [Part("box", "phone", (x, y, z), (0.036, 0.0045, 0.073), (0, 50, 0), "seat"),
                Part("ellipsoid", "skin", (x, y + 0.02, z - 0.01), (0.045, 0.016, 0.055), (0, 0, 0), "seat")]
    if name == "cup":
        return [Part("ellipsoid", "cup", (0.0, 0.085, -0.075), (0.036, 0.055, 0.036), (0, 25, 0))] \
            + _hand((0.0, 0.11, -0.085), (0, 0, 0), 0.9)
    if name == "bottle":
        return [Part("ellipsoid", "bottle", (0.0, 0.13, -0.12), (0.03, 0.10, 0.03), (0, 55, 0)),
                Part("ellipsoid", "skin", (0.0, 0.16, -0.16), (0.04, 0.03, 0.04), (0, 55, 0))]
    if name == "cigarette":
        return [Part("box", "cigarette", (-0.018, 0.076, -0.055), (0.0035, 0.0035, 0.03), (20, -20, 0)),
                Part("box", "filter", (-0.010, 0.072, -0.031), (0.0037, 0.0037, 0.009), (20, -20, 0))]
    if name == "vape":
        return [Part("box", "vape", (-0.012, 0.085, -0.065), (0.009, 0.005, 0.045), (15, -25, 0))] \
            + _hand((-0.02, 0.12, -0.10), (0, 60, 0), 0.85)
    raise ValueError(f"unknown occluder {name!r}")


# --- ray casting --------------------------------------------------------------------------------

@dataclass
class Hits:
    flat: np.ndarray
    z: np.ndarray
    normals: np.ndarray
    points: np.ndarray


def raycast_box(centre: np.ndarray, axes: np.ndarray, half: np.ndarray, k: np.ndarray,
                shape: tuple[int, int]) -> Hits | None:
    """Front intersection of camera rays with an oriented box (slab method), inside its projected
    bounding rectangle only."""
    h, w = shape
    window = box_window(centre, axes, half, k, shape)
    if window is None:
        return None
    x0, y0, x1, y1 = window
    gy, gx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
    d = np.stack([(gx.ravel() - k[0, 2]) / k[0, 0], (gy.ravel() - k[1, 2]) / k[1, 1],
                  np.ones(gx.size)], 1)
    o = axes.T @ (-centre)
    dl = d @ axes
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (-half - o) / dl
        t2 = (half - o) / dl
    tn = np.nanmax(np.minimum(t1, t2), 1)
    tf = np.nanmin(np.maximum(t1, t2), 1)
    hit = (tf >= tn) & (tn > 0)
    if not hit.any():
        return None
    axis = np.nanargmax(np.minimum(t1, t2)[hit], 1)
    n_local = np.zeros((int(hit.sum()), 3))
    n_local[np.arange(len(axis)), axis] = -np.sign(dl[hit][np.arange(len(axis)), axis])
    pts = d[hit] * tn[hit, None]
    flat = (gy.ravel()[hit] * w + gx.ravel()[hit]).astype(np.int64)
    return Hits(flat, pts[:, 2], n_local @ axes.T, pts)


def _ellipsoid(centre: np.ndarray, axes: np.ndarray, radii: np.ndarray, k: np.ndarray,
               everywhere: np.ndarray) -> Hits | None:
    hit = raycast_ellipsoid(centre, axes, radii, k, everywhere)
    if hit is None:
        return None
    return Hits(hit.flat.astype(np.int64), hit.points[:, 2].astype(float), hit.normals.astype(float),
                hit.points.astype(float))


def _patch_triangles(name: str, local: np.ndarray) -> tuple[np.ndarray, float]:
    """Face-mesh triangles a patch covers, and how far it stands off the skin (m)."""
    tris = fm.load_model().triangles
    v = local[: fm.N_MESH]
    if name == "mask":
        # From just under the nose bridge down past the chin, across the cheeks.
        keep = (v[:, 1] > 0.012) & (np.abs(v[:, 0]) < 0.066)
        return tris[keep[tris].all(1)], 0.004
    if name == "fringe":
        # The forehead down over the brows, ending in a ragged edge just above the lids.
        x = v[:, 0]
        edge = -0.008 + 0.004 * np.sin(x * 260.0) + 0.003 * np.sin(x * 610.0 + 1.0)
        keep = (v[:, 1] < edge) & (np.abs(x) < 0.068)
        return tris[keep[tris].all(1)], 0.003
    raise ValueError(f"unknown patch {name!r}")


def _patch(name: str, local: np.ndarray, to_cam: Callable[[np.ndarray], np.ndarray], k: np.ndarray,
           shape: tuple[int, int]) -> Hits | None:
    tris, off = _patch_triangles(name, local)
    if len(tris) == 0:
        return None
    v = local[: fm.N_MESH]
    all_tris = fm.load_model().triangles
    n = vertex_normals(v, all_tris)
    if n[fm.NOSE_TIP, 2] > 0:  # outward normals point along -z at the nose tip
        n = -n
    cam = to_cam(v + off * n)
    frags = rasterize_mesh(project(cam, k), cam[:, 2], tris, shape)
    if len(frags.flat) == 0:
        return None
    cam_n = to_cam(v + n) - to_cam(v)
    attrs = frags.interpolate(np.concatenate([cam, cam_n], 1), tris)
    nn = attrs[:, 3:6].astype(float)
    nn /= np.maximum(np.sqrt(rowdot(nn, nn)), 1e-9)[:, None]
    return Hits(frags.flat.astype(np.int64), attrs[:, 2].astype(float), nn, attrs[:, :3].astype(float))


def head_depth(verts_cam: np.ndarray, skull: tuple[np.ndarray, np.ndarray, np.ndarray], k: np.ndarray,
               shape: tuple[int, int]) -> np.ndarray:
    """Flat (H*W,) depth of what the renderer shows of the head: the face mesh, and the skull where
    the mesh is not (inf where neither is)."""
    z = np.full(shape[0] * shape[1], np.inf)
    tris = fm.load_model().triangles
    mv = verts_cam[: fm.N_MESH]
    frags = rasterize_mesh(project(mv, k), mv[:, 2], tris, shape)
    if len(frags.flat):
        z[frags.flat] = frags.interpolate(mv[:, 2:3], tris)[:, 0]
    # The renderer draws the skull only where the face mesh is not (layers go front to back).
    hit = _ellipsoid(*skull, k, np.ones(shape, bool))
    if hit is not None:
        free = np.isinf(z[hit.flat])
        z[hit.flat[free]] = hit.z[free]
    return z


@dataclass
class OccluderLayer:
    """What the occluders drew: per-pixel depth (inf elsewhere) and the drawn pixel mask."""

    z: np.ndarray  # (H*W,)
    drawn: np.ndarray  # (H*W,) bool


def draw_occluders(
    canvas: np.ndarray,
    name: str,
    local: np.ndarray,
    patch_to_cam: Callable[[np.ndarray], np.ndarray],
    to_cam: Callable[[np.ndarray], np.ndarray],
    rot: np.ndarray,
    seat_to_cam: Callable[[np.ndarray], np.ndarray],
    seat_rot: np.ndarray,
    k: np.ndarray,
    head_z: np.ndarray,
    shade: Callable[[np.ndarray, np.ndarray], np.ndarray],
    albedo: Callable[[str], np.ndarray],
) -> OccluderLayer:
    """Draw occluder ``name`` over ``canvas`` (H, W, 3 linear) where it is nearer than the head.
    ``local`` is the posed head-local mesh (``patch_to_cam`` maps it); ``to_cam`` maps the head frame
    of the parts (scaled with the head), ``seat_to_cam`` the seat frame."""
    shape = canvas.shape[:2]
    z = np.full(shape[0] * shape[1], np.inf)
    col = np.zeros((shape[0] * shape[1], 3), np.float32)
    everywhere = np.ones(shape, bool)
    for part in occluder_parts(name):
        tc, r = (to_cam, rot) if part.frame == "head" else (seat_to_cam, seat_rot)
        axes = r @ head_rotation(*part.rot)
        centre = tc(np.array(part.centre, float)[None, :])[0]
        if part.kind == "ellipsoid":
            hit = _ellipsoid(centre, axes, np.array(part.size, float), k, everywhere)
        elif part.kind == "box":
            hit = raycast_box(centre, axes, np.array(part.size, float), k, shape)
        else:
            hit = _patch(part.patch, local, patch_to_cam, k, shape)
        if hit is None:
            continue
        nearer = hit.z < z[hit.flat]
        f = hit.flat[nearer]
        z[f] = hit.z[nearer]
        col[f] = shade(hit.normals[nearer], hit.points[nearer]) * albedo(part.material)[None, :]
    drawn = z < head_z
    canvas.reshape(-1, 3)[drawn] = col[drawn]
    return OccluderLayer(np.where(drawn, z, np.inf), drawn)


def lens_rings(size: float = 1.0) -> list[np.ndarray]:
    """The two lens rims in head-local metres (28 points each, rounded rectangles as superellipses),
    for a face ``size`` times an adult's (``model.face_growth``): glasses fit the face they sit on.
    The one definition of the frames' geometry: the renderer draws these rims and the conditions'
    labels and IR-blocking lenses use the same ones."""
    t = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    ex = 2.6
    cx = np.sign(np.cos(t)) * np.abs(np.cos(t)) ** (2 / ex)
    cy = np.sign(np.sin(t)) * np.abs(np.sin(t)) ** (2 / ex)
    rings = []
    for sx in (-1.0, 1.0):
        c = np.array([sx * 0.032, 0.004, -0.021])
        rings.append(np.stack([c[0] + 0.025 * cx, c[1] + 0.018 * cy, c[2] + 0.004 * np.abs(cx)], 1) * size)
    return rings


def lens_polygons(to_cam: Callable[[np.ndarray], np.ndarray], k: np.ndarray,
                  size: float = 1.0) -> tuple[list[np.ndarray], float]:
    """The two lens outlines in pixels of ``k`` (``lens_rings``) and their depth."""
    polys, zs = [], []
    for ring in lens_rings(size):
        cam = to_cam(ring)
        polys.append(project(cam, k))
        zs.append(float(cam[:, 2].mean()))
    return polys, float(np.mean(zs))


def draw_ir_lenses(canvas: np.ndarray, polys: list[np.ndarray], nir: bool) -> np.ndarray:
    """Tint the lenses by their transmittance in the camera's band; returns the lens mask (H, W)."""
    mask = np.zeros(canvas.shape[:2], np.float32)
    cv2.fillPoly(mask, [np.round(p * 16).astype(np.int32) for p in polys], 1.0, cv2.LINE_AA, shift=4)
    vis, ir = LENS_TRANSMITTANCE["ir_blocking"]
    tr = ir if nir else vis
    canvas *= 1 - mask[..., None] * (1 - tr)
    # A faint reflection on the lens surface, as a dark lens shows.
    canvas += mask[..., None] * 0.02
    return mask > 0.5


def torso_shape(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The torso ellipsoid the renderer draws and the belt lies on: its centre relative to the
    chest anchor (``cabin.chest_anchor``; cabin axes, metres) and its radii."""
    return np.array([0.0, 0.36 * scale, -0.10]), np.array([0.22, 0.15, 0.13]) * scale


def seat_belt_polygon(camera: str, seat: str, k: np.ndarray, scale: float,
                      lean: float = 0.0, lean_to: str = "centre") -> tuple[np.ndarray, float]:
    """The belt from the outboard shoulder across the chest to the inboard hip: a strip on the
    torso's front surface (``torso_shape``), in pixels, and its mean depth."""
    side = -1.0 if seat == "driver" else 1.0
    eye = cabin.chest_anchor(seat, lean, lean_to)
    c, r = torso_shape(scale)
    s = np.linspace(0.0, 1.0, 12)
    x = side * (0.11 - 0.32 * s) * scale
    y = (0.14 + 0.34 * s) * scale
    q = 1 - (x / r[0]) ** 2 - ((y - c[1]) / r[1]) ** 2
    zf = c[2] + r[2] * np.sqrt(np.clip(q, 0.3, 1)) + 0.012
    half = 0.025 * scale
    left = np.stack([x - half * 0.7, y - half * 0.7 * side, zf], 1)
    right = np.stack([x + half * 0.7, y + half * 0.7 * side, zf], 1)
    pts = np.concatenate([left, right[::-1]]) + eye
    cam = cabin.to_camera(camera, seat, pts)
    return project(cam, k), float(cam[:, 2].mean())
