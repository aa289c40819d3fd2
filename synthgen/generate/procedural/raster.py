"""CPU rasterisation primitives: a triangle-ID buffer for meshes and ray-cast ellipsoids.

Why this split: Python loops per pixel or per triangle are what made earlier prototypes slow.
Triangles are filled by OpenCV (C loops) into an ID buffer in back-to-front order (painter's
algorithm, fine for a face seen from the front half-space), then every attribute is interpolated
for all covered pixels at once with numpy barycentrics. Round parts (skull, eyeballs, neck) are
exact quadrics, ray-cast only inside their projected bounding boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SUBPIXEL_BITS = 4
_SCALE = 1 << SUBPIXEL_BITS


def project(points: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Camera-frame points (N, 3) -> pixel coordinates (N, 2) with pinhole matrix K."""
    z = np.maximum(points[:, 2], 1e-6)
    return np.stack([k[0, 0] * points[:, 0] / z + k[0, 2], k[1, 1] * points[:, 1] / z + k[1, 2]], 1)


def vertex_normals(verts: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals, oriented like the triangles' winding."""
    a, b, c = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    fn = np.cross(b - a, c - a)
    n = np.zeros_like(verts)
    for i in range(3):
        np.add.at(n, tris[:, i], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


@dataclass
class MeshFragments:
    """Pixels covered by a mesh: their flat indices, triangle ids and barycentric weights."""

    ys: np.ndarray
    xs: np.ndarray
    tri: np.ndarray
    bary: np.ndarray  # (P, 3)
    id_buffer: np.ndarray  # (H, W) int32, -1 where empty

    def interpolate(self, attr: np.ndarray, tris: np.ndarray) -> np.ndarray:
        """Per-vertex attribute (V, C) -> per-pixel (P, C)."""
        t = tris[self.tri]
        return (attr[t[:, 0]] * self.bary[:, :1] + attr[t[:, 1]] * self.bary[:, 1:2]
                + attr[t[:, 2]] * self.bary[:, 2:3])


def rasterize_mesh(px: np.ndarray, depth: np.ndarray, tris: np.ndarray, shape: tuple[int, int]) -> MeshFragments:
    """Fill front-facing triangles (clockwise on screen, as the asset winds them) far to near."""
    h, w = shape
    a, b, c = px[tris[:, 0]], px[tris[:, 1]], px[tris[:, 2]]
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    front = np.flatnonzero(cross > 1e-9)
    order = front[np.argsort(-depth[tris[front]].mean(1), kind="stable")]
    buf = np.full((h, w), -1, np.int32)
    fixed = np.round(px * _SCALE).astype(np.int32)
    tri_pts = fixed[tris]
    for t in order.tolist():
        cv2.fillConvexPoly(buf, tri_pts[t], t, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    ys, xs = np.nonzero(buf >= 0)
    tri = buf[ys, xs]
    # Barycentrics from the 2D affine map of each triangle.
    pa, pb, pc = a[tri], b[tri], c[tri]
    e1, e2 = pb - pa, pc - pa
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    dx, dy = xs - pa[:, 0], ys - pa[:, 1]
    l1 = (dx * e2[:, 1] - dy * e2[:, 0]) / det
    l2 = (e1[:, 0] * dy - e1[:, 1] * dx) / det
    bary = np.clip(np.stack([1 - l1 - l2, l1, l2], 1), 0.0, 1.0)
    bary /= bary.sum(1, keepdims=True)
    return MeshFragments(ys, xs, tri, bary, buf)


@dataclass
class QuadricHit:
    ys: np.ndarray
    xs: np.ndarray
    points: np.ndarray  # (P, 3) camera frame
    normals: np.ndarray  # (P, 3)
    local: np.ndarray  # (P, 3) hit point in the ellipsoid's unit-sphere frame


def raycast_ellipsoid(centre: np.ndarray, axes: np.ndarray, radii: np.ndarray, k: np.ndarray,
                      shape: tuple[int, int]) -> QuadricHit | None:
    """Front intersection of camera rays with an ellipsoid ``centre + axes @ diag(radii) @ unit``.
    ``axes`` columns are the ellipsoid's axes in the camera frame."""
    h, w = shape
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
    box = centre + (corners * radii) @ axes.T
    if (box[:, 2] <= 0.01).any():
        return None
    pb = project(box, k)
    x0, y0 = np.floor(pb.min(0)).astype(int)
    x1, y1 = np.ceil(pb.max(0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)
    if x1 < x0 or y1 < y0:
        return None
    gy, gx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
    gx, gy = gx.ravel().astype(float), gy.ravel().astype(float)
    d = np.stack([(gx - k[0, 2]) / k[0, 0], (gy - k[1, 2]) / k[1, 1], np.ones_like(gx)], 1)
    inv = axes / radii  # columns scaled: local = (p - c) @ axes / radii
    o = (-centre) @ inv
    dl = d @ inv
    qa = (dl**2).sum(1)
    qb = 2 * (dl @ o)
    qc = o @ o - 1.0
    disc = qb**2 - 4 * qa * qc
    hit = disc > 0
    if not hit.any():
        return None
    t = (-qb[hit] - np.sqrt(disc[hit])) / (2 * qa[hit])
    pts = d[hit] * t[:, None]
    local = o + dl[hit] * t[:, None]
    normals = (local / radii) @ axes.T
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return QuadricHit(gy[hit].astype(int), gx[hit].astype(int), pts, normals, local)


def clip_polygon_near(poly: np.ndarray, near: float = 0.02) -> np.ndarray:
    """Clip a camera-frame polygon (N, 3) to z >= near (Sutherland-Hodgman, one plane)."""
    out = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        pin, qin = p[2] >= near, q[2] >= near
        if pin:
            out.append(p)
        if pin != qin:
            t = (near - p[2]) / (q[2] - p[2])
            out.append(p + t * (q - p))
    return np.array(out) if out else np.zeros((0, 3))
