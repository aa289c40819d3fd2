"""Build the procedural renderer's face mesh asset from real face photos shipped inside packages.

Why: no installed wheel ships 3D face vertices, but MediaPipe's face mesh (refine_landmarks=True)
measures 478 points with depth on any photo. Averaging those measurements over the real faces that
scikit-image and insightface ship (after removing each face's pose and scale by Procrustes) gives a
mesh with real human proportions on MediaPipe's own topology, so the renderer's 478-point labels and
its face-mesh control map are exact by construction.

Output: ``synthgen/generate/procedural/assets/face_mesh.npz`` with
- ``vertices`` (478, 3) float32, metres, head-local frame of synthgen.geometry (x towards the
  subject's left, y down, the face looking along -z), origin at the mid-point between the pupils;
- ``triangles`` (T, 3) int32, wound counter-clockwise as seen from the front (the -z side);
- ``lm68`` (68,) int32 mesh vertex per iBUG-300W landmark;
- ``mirror`` (478,) int32 the left/right symmetric partner of every vertex;
- ``n_faces`` number of photos averaged.

Run: ``.venv/bin/python scripts/build_face_mesh.py`` (deterministic; takes a few seconds).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "synthgen" / "generate" / "procedural" / "assets" / "face_mesh.npz"
IPD_M = 0.063  # mean adult interpupillary distance

# iBUG-300W 68 points -> MediaPipe vertices (the widely used correspondence; jaw points follow the
# face oval, eye corners/lids and lips follow MediaPipe's eye and lip contours).
LM68_TO_MP = [
    127, 234, 93, 132, 58, 172, 136, 150, 152, 379, 365, 397, 288, 361, 323, 454, 356,  # jaw 0-16
    70, 63, 105, 66, 107,  # subject's right brow 17-21
    336, 296, 334, 293, 300,  # left brow 22-26
    168, 197, 5, 4,  # nose bridge 27-30
    75, 97, 2, 326, 305,  # nostrils 31-35
    33, 160, 158, 133, 153, 144,  # right eye 36-41
    362, 385, 387, 263, 373, 380,  # left eye 42-47
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips 48-59
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips 60-67
]


def _photos() -> list[np.ndarray]:
    """RGB face crops: astronaut (one face) and each face of insightface's t1.jpg, 2x padded."""
    import insightface
    import skimage

    images: list[np.ndarray] = []
    astro = cv2.cvtColor(cv2.imread(str(Path(skimage.__file__).parent / "data" / "astronaut.png")),
                         cv2.COLOR_BGR2RGB)
    images.append(astro)
    group = cv2.cvtColor(cv2.imread(str(Path(insightface.__file__).parent / "data" / "images" / "t1.jpg")),
                         cv2.COLOR_BGR2RGB)
    h, w = group.shape[:2]
    # dlib's HOG finds all 6 faces of t1.jpg; MediaPipe's detector finds only 3 of them.
    import dlib

    for r in dlib.get_frontal_face_detector()(group, 1):
        cx, cy = (r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2
        half = max(r.width(), r.height())  # 2x padding: crop side = 2 x face size
        x0, y0 = int(max(cx - half, 0)), int(max(cy - half, 0))
        x1, y1 = int(min(cx + half, w)), int(min(cy + half, h))
        crop = cv2.resize(group[y0:y1, x0:x1], (384, 384), interpolation=cv2.INTER_CUBIC)
        images.append(crop)
    return images


def _measure(images: list[np.ndarray]) -> list[np.ndarray]:
    """478x3 points per face, in pixel units (z scaled like x, as MediaPipe defines it)."""
    shapes = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                         min_detection_confidence=0.5) as mesh:
        for img in images:
            res = mesh.process(img).multi_face_landmarks
            if not res:
                continue
            h, w = img.shape[:2]
            pts = np.array([[p.x * w, p.y * h, p.z * w] for p in res[0].landmark], float)
            shapes.append(pts)
    return shapes


def _similarity_align(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """src aligned to dst by rotation, uniform scale and translation (Umeyama, no reflection)."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, s, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    dmat = np.diag([1.0, 1.0, d])
    rot = u @ dmat @ vt
    scale = (s * np.diag(dmat)).sum() / (a**2).sum()
    return (scale * (rot @ a.T)).T + md


_PAIRS = [(33, 263), (133, 362), (61, 291), (234, 454), (70, 300)]  # right/left symmetric vertices


def _frontal_frame(v: np.ndarray) -> np.ndarray:
    """Rotate a mean shape so the face is frontal: x from the subject's right to left (eye corners,
    mouth corners, cheeks), y from forehead to chin, both orthogonalised."""
    x = sum(v[b] - v[a] for a, b in _PAIRS)
    x /= np.linalg.norm(x)
    y = v[152] - v[10]
    y -= (y @ x) * x
    y /= np.linalg.norm(y)
    z = np.cross(x, y)  # x right, y down -> z away from the viewer (the face looks along -z)
    return v @ np.stack([x, y, z]).T


def _mirror_index(v: np.ndarray) -> np.ndarray:
    """Partner of each vertex under x -> -x: a one-to-one assignment on mirrored distances (the
    distance matrix is symmetric, so the assignment is its own inverse up to ties, checked below)."""
    from scipy.optimize import linear_sum_assignment

    flipped = v * np.array([-1.0, 1.0, 1.0])
    d = np.sqrt(((flipped[:, None, :] - v[None, :, :]) ** 2).sum(-1))
    _, cols = linear_sum_assignment(d)
    return cols


def _mirror_all(v: np.ndarray) -> np.ndarray:
    """Mesh partners by assignment; iris centres swap, iris ring points match around their centre
    (the photos' gazes differ, so raw iris positions are not symmetric)."""
    mesh = _mirror_index(v[:468])
    ring_r = v[469:473] - v[468]
    ring_l = v[474:478] - v[473]
    d = (((ring_r * np.array([-1.0, 1.0, 1.0]))[:, None] - ring_l[None]) ** 2).sum(-1)
    r2l = 474 + d.argmin(1)
    iris = np.empty(10, int)
    iris[0], iris[5] = 473, 468
    iris[1:5] = r2l
    iris[5 + (r2l - 473)] = np.arange(469, 473)
    out = np.concatenate([mesh, iris])
    bad = np.flatnonzero(out[out] != np.arange(478))
    if len(bad):
        sys.exit(f"mirror map is not an involution at vertices {bad.tolist()}")
    return out


def _triangles(n_mesh: int, vertices: np.ndarray) -> np.ndarray:
    """Triangles of MediaPipe's tessellation (3-cliques of its edge list), wound CCW from the front."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    adj: dict[int, set[int]] = {i: set() for i in range(n_mesh)}
    for a, b in FACEMESH_TESSELATION:
        adj[a].add(b)
        adj[b].add(a)
    tris = set()
    for a in range(n_mesh):
        for b, c in itertools.combinations(sorted(adj[a]), 2):
            if c in adj[b]:
                tris.add(tuple(sorted((a, b, c))))
    out = []
    for a, b, c in sorted(tris):
        p, q, r = vertices[a, :2], vertices[b, :2], vertices[c, :2]
        cross = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
        # Seen from the front in image axes (x right, y down), clockwise on screen means positive cross.
        out.append((a, b, c) if cross > 0 else (a, c, b))
    return np.array(out, np.int32)


R_EYE_UPPER = [246, 161, 160, 159, 158, 157, 173]
R_EYE_LOWER = [7, 163, 144, 145, 153, 154, 155]
LIP_INNER_UPPER = [191, 80, 81, 82, 13, 312, 311, 310, 415]
LIP_INNER_LOWER = [95, 88, 178, 87, 14, 317, 402, 318, 324]


def _falloff(v: np.ndarray, anchors: list[int], sigma: float, side: np.ndarray) -> np.ndarray:
    d = np.sqrt(((v[:, None, :2] - v[None, anchors, :2]) ** 2).sum(-1)).min(1)
    return np.exp(-(d**2) / (2 * sigma**2)) * side


def _neutralise(v: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Close the mouth and open the eyes of the averaged face.

    The photos' mean has parted lips (smiles) and narrowed lids (an eye height of 6 mm for a
    29 mm wide eye); a neutral face has closed lips and an eye about 9 mm high. Vertices near the
    lips and lids move with a Gaussian falloff, so the surrounding skin follows."""
    out = v.copy()
    mesh = v[:468]
    lip_y = 0.5 * (mesh[13, 1] + mesh[14, 1])
    ux, gaps = mesh[LIP_INNER_UPPER, 0], mesh[LIP_INNER_LOWER, 1] - mesh[LIP_INNER_UPPER, 1]
    gap = np.interp(mesh[:, 0], np.sort(ux), gaps[np.argsort(ux)], left=0.0, right=0.0)
    half = np.clip(gap - 0.0004, 0.0, None) / 2
    up = _falloff(mesh, LIP_INNER_UPPER, 0.005, mesh[:, 1] <= lip_y)
    lo = _falloff(mesh, LIP_INNER_LOWER, 0.006, mesh[:, 1] > lip_y)
    out[:468, 1] += half * up - half * lo
    for side in (lambda ids: ids, lambda ids: [int(mirror[i]) for i in ids]):
        upper, lower = side(R_EYE_UPPER), side(R_EYE_LOWER)
        c = mesh[upper + lower].mean(0)
        near = ((mesh[:, :2] - c[:2]) ** 2).sum(1) < 0.025**2
        out[:468, 1] -= 0.0022 * _falloff(mesh, upper, 0.004, near & (mesh[:, 1] < c[1]))
        out[:468, 1] += 0.0007 * _falloff(mesh, lower, 0.004, near & (mesh[:, 1] >= c[1]))
    return out


def build() -> dict[str, np.ndarray]:
    shapes = _measure(_photos())
    if len(shapes) < 3:
        sys.exit(f"only {len(shapes)} faces measured; expected 7 (astronaut + 6 in t1.jpg)")
    ref = shapes[0]
    for _ in range(5):  # generalised Procrustes: align all to the running mean
        aligned = [_similarity_align(s, ref) for s in shapes]
        ref = np.mean(aligned, axis=0)
    mean = _frontal_frame(ref)
    centre = np.mean([0.5 * (mean[a] + mean[b]) for a, b in _PAIRS], axis=0)
    mean -= centre * np.array([1.0, 0.0, 0.0])  # the symmetry plane at x = 0
    mirror = _mirror_all(mean)
    sym = 0.5 * (mean + mean[mirror] * np.array([-1.0, 1.0, 1.0]))
    mid = 0.5 * (sym[468] + sym[473])
    sym -= mid
    sym *= IPD_M / np.linalg.norm(sym[473] - sym[468])
    sym = _neutralise(sym, mirror)
    tris = _triangles(468, sym)
    return {
        "vertices": sym.astype(np.float32),
        "triangles": tris,
        "lm68": np.array(LM68_TO_MP, np.int32),
        "mirror": mirror.astype(np.int32),
        "n_faces": np.array(len(shapes)),
    }


def main() -> None:
    data = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from synthgen.io import atomic_path

    with atomic_path(OUT) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **data)
    v = data["vertices"]
    print(f"{OUT.relative_to(ROOT)}: {len(v)} vertices, {len(data['triangles'])} triangles, "
          f"{int(data['n_faces'])} faces averaged; face width {np.ptp(v[:, 0]) * 100:.1f} cm, "
          f"height {np.ptp(v[:, 1]) * 100:.1f} cm, depth {np.ptp(v[:, 2]) * 100:.1f} cm")


if __name__ == "__main__":
    main()
