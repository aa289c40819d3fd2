"""CPU rasterisation primitives: a triangle-ID buffer for meshes and ray-cast ellipsoids.

Why this split: Python loops per pixel or per triangle are what made earlier prototypes slow.
Triangles are filled by OpenCV (C loops) into an ID buffer in back-to-front order (painter's
algorithm, fine for a face seen from the front half-space), then every attribute is interpolated
for all covered pixels at once with numpy barycentrics. Round parts (skull, eyeballs, neck) are
exact quadrics, ray-cast only inside their projected bounding boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

SUBPIXEL_BITS = 4
_SCALE = 1 << SUBPIXEL_BITS


def take_rows(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[idx]`` for row gathers: np.take is several times faster than fancy indexing here."""
    return np.take(a, idx, axis=0)


def scatter_rows(img: np.ndarray, flat: np.ndarray, rows: np.ndarray) -> None:
    """``img.reshape(-1, C)[flat] = rows`` through a void view (one copy per pixel, not per value),
    which is several times faster than numpy's fancy assignment."""
    c = img.shape[-1]
    item = np.dtype((np.void, img.itemsize * c))
    view = img.reshape(-1, c).view(item).reshape(-1)
    src = np.ascontiguousarray(rows, dtype=img.dtype).view(item).reshape(-1)
    view[flat] = src


def rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot product of (P, C) arrays (einsum avoids numpy's slow small-axis reductions).

    float32 (P, 3), the per-pixel case: three column products summed left to right, which is
    einsum's float32 arithmetic (the same bits, checked on millions of rows) at a third of its
    cost; float64 keeps einsum, whose summation order differs."""
    if a.dtype == b.dtype == np.float32 and a.ndim == b.ndim == 2 and a.shape[1] == b.shape[1] == 3:
        out = a[:, 0] * b[:, 0]
        out += a[:, 1] * b[:, 1]
        out += a[:, 2] * b[:, 2]
        return out
    return np.einsum("ij,ij->i", a, b)


def project(points: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Camera-frame points (N, 3) -> pixel coordinates (N, 2) with pinhole matrix K."""
    z = np.maximum(points[:, 2], 1e-6)
    return np.stack([k[0, 0] * points[:, 0] / z + k[0, 2], k[1, 1] * points[:, 1] / z + k[1, 2]], 1)


@lru_cache(maxsize=8)
def _block_keys(height: int, width: int, block: int) -> np.ndarray:
    """Per canvas pixel (flat index), the index of the ``block`` x ``block`` output pixel it falls in
    (a table: integer division over every covered sample cost more than the shading it saves)."""
    ys, xs = np.divmod(np.arange(height * width, dtype=np.int32), np.int32(width))
    keys = (ys // block) * np.int32(-(-width // block)) + xs // block
    keys.setflags(write=False)
    return keys


def shading_samples(flat: np.ndarray, shape: tuple[int, int], block: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Multisample shading, as MSAA does it: of the canvas samples a layer covers (``flat``, indices
    into a canvas ``width`` samples wide), the one sample shaded per output pixel (``block`` x
    ``block`` samples), and for every covered sample the row of that shaded sample.

    Why: coverage at every sample keeps silhouettes and occlusion edges anti-aliased, while texture
    and light, which vary slowly across one output pixel, are computed once per pixel instead of
    once per sample (a quarter of the work at 2x supersampling). The shaded sample is the block's
    first covered one in row-major order, so it always lies on the layer (centroid-like sampling).
    None when ``block`` is 1 (every sample shaded)."""
    if block <= 1 or len(flat) == 0:
        return None
    key = np.take(_block_keys(shape[0], shape[1], block), flat)
    order = np.arange(len(flat))
    first = np.full(-(-shape[0] // block) * -(-shape[1] // block), len(flat), np.int64)
    np.minimum.at(first, key, order)
    rep_of = np.take(first, key)
    is_rep = rep_of == order
    rows = np.cumsum(is_rep) - 1
    return np.flatnonzero(is_rep), np.take(rows, rep_of)


def expand_rows(values: np.ndarray, inverse: np.ndarray | None) -> np.ndarray:
    """Per-shaded-sample values -> per covered sample (``inverse`` from ``shading_samples``)."""
    return values if inverse is None else take_rows(values, inverse)


def vertex_normals(verts: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals, oriented like the triangles' winding."""
    a, b, c = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    u, v = b - a, c - a
    fn = np.stack([u[:, 1] * v[:, 2] - u[:, 2] * v[:, 1], u[:, 2] * v[:, 0] - u[:, 0] * v[:, 2],
                   u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]], 1)
    idx = tris.T.ravel()
    n = np.stack([np.bincount(idx, np.tile(fn[:, j], 3), minlength=len(verts)) for j in range(3)], 1)
    return n / np.maximum(np.sqrt(rowdot(n, n)), 1e-12)[:, None]


@dataclass
class MeshFragments:
    """Pixels covered by a mesh: their flat indices, and the triangle ids and barycentric weights of
    the samples that are shaded (all of them unless multisample shading is on: then ``inverse``
    maps every covered sample to its shaded one)."""

    flat: np.ndarray  # flat pixel index (y * W + x) of every covered sample
    tri: np.ndarray  # per shaded sample
    bary: np.ndarray  # (S, 3), per shaded sample
    id_buffer: np.ndarray  # (H, W) int32, -1 where empty
    inverse: np.ndarray | None = None

    def expand(self, values: np.ndarray) -> np.ndarray:
        """Per shaded sample -> per covered sample (aligned with ``flat``)."""
        return expand_rows(values, self.inverse)

    def interpolate(self, attr: np.ndarray, tris: np.ndarray) -> np.ndarray:
        """Per-vertex attributes (V, C) -> per-pixel (P, C); stack attributes to gather once."""
        t = take_rows(tris, self.tri)
        a = np.asarray(attr, np.float32)
        out = take_rows(a, t[:, 0])  # in place from here: the same sums, without the temporaries
        out *= self.bary[:, :1]
        for j in (1, 2):
            term = take_rows(a, t[:, j])
            term *= self.bary[:, j : j + 1]
            out += term
        return out


def rasterize_mesh(px: np.ndarray, depth: np.ndarray, tris: np.ndarray, shape: tuple[int, int],
                   block: int = 1) -> MeshFragments:
    """Fill front-facing triangles (clockwise on screen, as the asset winds them) far to near.
    ``block`` > 1: barycentrics only for one sample per ``block`` x ``block`` pixel
    (``shading_samples``)."""
    h, w = shape
    a, b, c = px[tris[:, 0]], px[tris[:, 1]], px[tris[:, 2]]
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    front = np.flatnonzero(cross > 1e-9)
    order = front[np.argsort(-depth[tris[front]].mean(1), kind="stable")]
    buf = np.full((h, w), -1, np.int32)
    fixed = np.round(px * _SCALE).astype(np.int32)
    # One gather for the triangles in fill order, split into rows by a C loop, and positional
    # arguments: the Python loop's own cost was a fifth of the fill.
    fill = cv2.fillConvexPoly
    for t, pts in zip(order.tolist(), list(fixed[tris[order]]), strict=True):
        fill(buf, pts, t, cv2.LINE_8, SUBPIXEL_BITS)
    flat_buf = buf.reshape(-1)
    flat = np.flatnonzero(flat_buf >= 0)
    tri = np.take(flat_buf, flat)
    shaded = shading_samples(flat, shape, block)
    inverse = None
    sflat = flat
    if shaded is not None:
        sflat = np.take(flat, shaded[0])
        tri = np.take(tri, shaded[0])
        inverse = shaded[1]
    ys, xs = np.divmod(sflat, w)
    # Barycentrics from the 2D affine map of each triangle, precomputed per triangle (float32
    # coefficients, evaluated in float64 as before): one contiguous gather per coefficient and no
    # mixed-type strided column arithmetic over every pixel.
    e1, e2 = b - a, c - a
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    coef = np.stack([a[:, 0], a[:, 1], e2[:, 1] / det, e2[:, 0] / det, e1[:, 0] / det, e1[:, 1] / det])
    ax, ay, c2, c3, c4, c5 = (np.take(row, tri) for row in coef.astype(np.float32).astype(np.float64))
    dx, dy = xs - ax, ys - ay
    l1 = dx * c2 - dy * c3
    l2 = c4 * dy - c5 * dx
    bary = np.empty((len(sflat), 3), np.float32)
    for j, v in enumerate((1 - l1 - l2, l1, l2)):
        bary[:, j] = np.clip(v, 0.0, 1.0, out=v)
    bary /= (bary[:, 0] + bary[:, 1] + bary[:, 2])[:, None]
    return MeshFragments(flat, tri, bary, buf, inverse)


@dataclass
class QuadricHit:
    """A ray-cast quadric's covered samples (``flat``) and, per shaded sample (every covered one
    unless ``inverse`` maps them, see ``shading_samples``), its surface points and normals."""

    flat: np.ndarray  # flat pixel index (y * W + x) of every covered sample
    points: np.ndarray  # (S, 3) camera frame
    normals: np.ndarray  # (S, 3)
    rel: np.ndarray  # (S, 3) points minus the centre (float32)
    axes: np.ndarray  # (3, 3) float32, the ellipsoid's axes as columns
    radii: np.ndarray  # (3,) float32
    inverse: np.ndarray | None = None

    def expand(self, values: np.ndarray) -> np.ndarray:
        """Per shaded sample -> per covered sample (aligned with ``flat``)."""
        return expand_rows(values, self.inverse)

    @property
    def local(self) -> np.ndarray:
        """(P, 3) hit points in the ellipsoid's unit-sphere frame; computed on demand, since only
        the skull and the eyeballs need it."""
        return (self.rel @ self.axes) / self.radii

    def depth_buffer(self, size: int) -> np.ndarray:
        """(size,) float32: this layer's camera depth at the samples it covers, inf elsewhere."""
        buf = np.full(size, np.inf, np.float32)
        buf[self.flat] = self.expand(self.points[:, 2])
        return buf

    def in_front_of(self, depth_buffer: np.ndarray) -> np.ndarray:
        """Per covered sample, whether this layer is nearer than ``depth_buffer`` (another layer's
        ``depth_buffer``): for layers that overlap in depth, where front-to-back order is not enough
        (ears and skull, neck and torso)."""
        return np.asarray(self.expand(self.points[:, 2]) < depth_buffer[self.flat])


_CORNERS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)


def box_window(centre: np.ndarray, axes: np.ndarray, half: np.ndarray, k: np.ndarray,
               shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """The pixel rectangle (x0, y0, x1, y1, inclusive) that the projection of an oriented box
    (``centre + axes @ diag(half) @ [-1, 1]^3``) covers inside an image of ``shape``; None when
    the box reaches behind the camera or falls outside the image. Ray casts only test its pixels."""
    h, w = shape[:2]
    box = centre + (_CORNERS * half) @ axes.T
    if (box[:, 2] <= 0.01).any():
        return None
    pb = project(box, k)
    x0, y0 = np.floor(pb.min(0)).astype(int)
    x1, y1 = np.ceil(pb.max(0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)
    if x1 < x0 or y1 < y0:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def _conic_interior(q: np.ndarray, window: tuple[int, int, int, int], free: np.ndarray) -> np.ndarray:
    """Flat indices (row-major, ascending) of the pixels (x, y) of ``window`` where ``free`` is set
    and ``[x, y, 1] q [x, y, 1]^T > 0``: the inside of the silhouette ellipse.

    Why per row: the inside of an ellipse is one span per row, the open interval between the roots
    of a quadratic in x, so only the covered pixels are ever visited (a dense test over the
    bounding box touched several times as many). A conic that is not an ellipse (q[0, 0] >= 0,
    which a quadric wholly in front of the camera never gives) is tested densely."""
    x0, y0, x1, y1 = window
    h, w = free.shape
    ys = np.arange(y0, y1 + 1, dtype=np.float64)
    a = float(q[0, 0])
    b = 2 * (q[0, 1] * ys + q[0, 2])
    c = (q[1, 1] * ys + 2 * q[1, 2]) * ys + q[2, 2]
    if a >= 0:
        xs = np.arange(x0, x1 + 1, dtype=np.float64)
        inside = (a * xs[None, :] + b[:, None]) * xs[None, :] + c[:, None] > 0
        gy, gx = np.nonzero(inside & free[y0 : y1 + 1, x0 : x1 + 1])
        return (gy + y0) * w + (gx + x0)
    disc = b * b - 4 * a * c
    root = np.sqrt(np.maximum(disc, 0.0))
    left = np.floor((-b + root) / (2 * a)) + 1  # a < 0: this root is the smaller one; strict inside
    right = np.ceil((-b - root) / (2 * a)) - 1
    left = np.maximum(left, x0).astype(np.int64)
    right = np.minimum(right, x1).astype(np.int64)
    counts = np.where(disc > 0, np.maximum(right - left + 1, 0), 0)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    starts = (np.arange(y0, y1 + 1, dtype=np.int64) * w + left)
    flat = np.arange(total, dtype=np.int64)
    flat += np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return flat[np.take(free.reshape(-1), flat)]


def _inverse(k: np.ndarray) -> np.ndarray:
    """``np.linalg.inv(k)`` of a frame's camera matrix, computed once per matrix (every quadric of a
    frame casts through the same one)."""
    return _inverse_of(k.astype(np.float64).tobytes())


@lru_cache(maxsize=32)
def _inverse_of(k_bytes: bytes) -> np.ndarray:
    inv = np.linalg.inv(np.frombuffer(k_bytes, np.float64).reshape(3, 3))
    inv.setflags(write=False)
    return inv


def raycast_ellipsoid(centre: np.ndarray, axes: np.ndarray, radii: np.ndarray, k: np.ndarray,
                      free: np.ndarray, block: int = 1) -> QuadricHit | None:
    """Front intersection of camera rays with an ellipsoid ``centre + axes @ diag(radii) @ unit``
    (``axes`` columns: the ellipsoid's axes in the camera frame), only at pixels where ``free``
    (H, W bool) is set: layers are drawn front to back, so hidden pixels cost nothing.

    Coverage is the silhouette cone: a ray d hits the ellipsoid iff
    ``d^T ((Mc)(Mc)^T - (c^T M c - 1) M) d > 0``, an ellipse in the image whose row spans are
    solved for directly (``_conic_interior``); the intersection depth
    and normal are computed for covered pixels only (``block`` > 1: for one covered sample per
    ``block`` x ``block`` pixel, ``shading_samples``)."""
    w = free.shape[1]
    window = box_window(centre, axes, radii, k, free.shape)
    if window is None:
        return None
    x0, y0, x1, y1 = window
    m = (axes / radii**2) @ axes.T
    mc = m @ centre
    cmc1 = float(centre @ mc - 1.0)
    cone = np.outer(mc, mc) - cmc1 * m
    kinv = _inverse(k)
    q = kinv.T @ cone @ kinv  # in pixel coordinates (x, y, 1)
    flat = _conic_interior(q, (x0, y0, x1, y1), free)
    if len(flat) == 0:
        return None
    shaded = shading_samples(flat, free.shape, block)
    inverse = None
    sflat = flat
    if shaded is not None:
        sflat, inverse = np.take(flat, shaded[0]), shaded[1]
    gy, gx = np.divmod(sflat, w)  # rows and columns of the shaded samples only
    gy -= y0
    gx -= x0
    # Ray directions per column and per row of the box, then gathered (the same values as
    # computing them per pixel).
    dx = np.take(((np.arange(x0, x1 + 1) - k[0, 2]) / k[0, 0]).astype(np.float32), gx)
    dy = np.take(((np.arange(y0, y1 + 1) - k[1, 2]) / k[1, 1]).astype(np.float32), gy)
    m32, mc32 = m.astype(np.float32), mc.astype(np.float32)
    dmd = (m32[0, 0] * dx * dx + m32[1, 1] * dy * dy + m32[2, 2] + 2 * m32[0, 1] * dx * dy
           + 2 * m32[0, 2] * dx + 2 * m32[1, 2] * dy)
    dmc = mc32[0] * dx + mc32[1] * dy + mc32[2]
    t = (dmc - np.sqrt(np.clip(dmc * dmc - dmd * cmc1, 0.0, None))) / dmd
    pts = np.empty((len(t), 3), np.float32)
    np.multiply(dx, t, out=pts[:, 0])
    np.multiply(dy, t, out=pts[:, 1])
    pts[:, 2] = t
    rel = pts - centre.astype(np.float32)
    normals = rel @ m32
    normals /= np.sqrt(rowdot(normals, normals))[:, None]
    return QuadricHit(flat, pts, normals, rel, axes.astype(np.float32), radii.astype(np.float32), inverse)


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


def hidden_by_mesh(pts: np.ndarray, z: np.ndarray, id_buffer: np.ndarray, px: np.ndarray, depth: np.ndarray,
                   tris: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """Per point, whether the mesh drawn in ``id_buffer`` lies in front of it. Candidates are the
    triangles drawn in the 3 x 3 pixels around the point's position ``pts`` (x, y on the buffer's
    grid); one hides the point when it does not have the point as a corner, contains the position,
    and its surface there (``px``, ``depth``: the mesh's vertices on that grid and their camera
    depth) is nearer than the point's ``z`` by more than ``margin`` (per point, metres). Why not
    just the triangle at the point's pixel: near a silhouette that pixel's centre is covered by a
    neighbouring triangle a little in front of the point while the point itself is on view, and a
    vertex lies on its own triangles. Points off the grid or on empty pixels are not hidden."""
    h, w = id_buffer.shape
    q = np.round(pts).astype(np.int64)
    # All 9 candidates of every point at once: (P * 9,) rows, point index repeated.
    offsets = np.array([(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    xy = (q[:, None, :] + offsets[None, :, :]).reshape(-1, 2)
    point = np.repeat(np.arange(len(q)), len(offsets))
    inside = (xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] < w) & (xy[:, 1] < h)
    t = np.full(len(xy), -1, np.int64)
    t[inside] = id_buffer[xy[inside, 1], xy[inside, 0]]
    keep = np.flatnonzero(t >= 0)
    hidden = np.zeros(len(q), bool)
    if len(keep) == 0:
        return hidden
    idx, corners = point[keep], tris[t[keep]]  # (n,), (n, 3)
    own = (corners == idx[:, None]).any(1)
    a, b, c = px[corners[:, 0]], px[corners[:, 1]], px[corners[:, 2]]
    e1, e2, d = b - a, c - a, pts[idx] - a
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    l1 = (d[:, 0] * e2[:, 1] - d[:, 1] * e2[:, 0]) / det
    l2 = (e1[:, 0] * d[:, 1] - e1[:, 1] * d[:, 0]) / det
    contains = (l1 >= 0) & (l2 >= 0) & (l1 + l2 <= 1)
    zc = depth[corners]
    surface = zc[:, 0] + l1 * (zc[:, 1] - zc[:, 0]) + l2 * (zc[:, 2] - zc[:, 0])
    hits = ~own & contains & (surface < z[idx] - margin[idx])
    hidden[idx[hits]] = True
    return hidden
