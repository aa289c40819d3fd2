"""Rasterisation primitives of the procedural renderer: silhouette spans, multisample shading,
fast normal noise, and what per-pixel shading does to the renders compared with per-sample."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from synthgen.generate.procedural.noise import standard_normal
from synthgen.generate.procedural.raster import (
    _conic_interior,
    rasterize_mesh,
    raycast_ellipsoid,
    shading_samples,
)
from synthgen.generate.procedural.renderer import render_spec
from synthgen.spec import SceneSpec


def _ellipse_conic(rng: np.random.Generator) -> np.ndarray:
    """A random ellipse as a conic q: inside where [x, y, 1] q [x, y, 1]^T > 0 (random positive scale)."""
    cx, cy = rng.uniform(0, 300, 2)
    ax, by = rng.uniform(3, 150, 2)
    th = rng.uniform(0, np.pi)
    r = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    d = r @ np.diag([1 / ax**2, 1 / by**2]) @ r.T
    c = np.array([cx, cy])
    q = np.zeros((3, 3))
    q[:2, :2] = -d
    q[:2, 2] = q[2, :2] = d @ c
    q[2, 2] = 1 - c @ d @ c
    return q * rng.uniform(0.1, 10)


def test_conic_spans_equal_the_dense_inside_test() -> None:
    """Row spans solved from the quadratic cover exactly the pixels the dense test marks, clipped to
    the window and to the free mask, in ascending order."""
    rng = np.random.default_rng(3)
    shape = (300, 320)
    for _ in range(60):
        q = _ellipse_conic(rng)
        free = rng.random(shape) > 0.2
        x0, y0 = (int(v) for v in rng.integers(0, 120, 2))
        window = (x0, y0, int(rng.integers(x0 + 1, shape[1])), int(rng.integers(y0 + 1, shape[0])))
        got = _conic_interior(q, window, free)
        xs = np.arange(window[0], window[2] + 1, dtype=float)
        ys = np.arange(window[1], window[3] + 1, dtype=float)
        gx, gy = np.meshgrid(xs, ys)
        val = (q[0, 0] * gx * gx + 2 * q[0, 1] * gx * gy + q[1, 1] * gy * gy + 2 * q[0, 2] * gx
               + 2 * q[1, 2] * gy + q[2, 2])
        inside = (val > 0) & free[window[1] : window[3] + 1, window[0] : window[2] + 1]
        iy, ix = np.nonzero(inside)
        want = (iy + window[1]) * shape[1] + ix + window[0]
        np.testing.assert_array_equal(got, want)


def test_shading_samples_pick_the_first_covered_sample_of_each_pixel() -> None:
    rng = np.random.default_rng(0)
    shape = (64, 70)
    flat = np.flatnonzero(rng.random(shape[0] * shape[1]) < 0.6)
    out = shading_samples(flat, shape, 2)
    assert out is not None
    reps, inverse = out
    ys, xs = np.divmod(flat, shape[1])
    pixel = (ys // 2) * 35 + xs // 2
    assert len(reps) == len(np.unique(pixel))  # one shaded sample per covered output pixel
    np.testing.assert_array_equal(pixel[reps][inverse], pixel)  # every sample maps into its own pixel
    for p in np.unique(pixel)[:200]:  # and to the first covered sample there
        assert flat[reps][inverse][pixel == p][0] == flat[pixel == p].min()
    assert shading_samples(flat, shape, 1) is None


def test_quadric_and_mesh_shade_one_sample_per_output_pixel() -> None:
    """At block 2 the covered samples are the same as at block 1; only a quarter (at most one per
    output pixel) are shaded, and their values equal the per-sample ones at those samples."""
    k = np.array([[400.0, 0, 100], [0, 400.0, 100], [0, 0, 1]])
    free = np.ones((200, 200), bool)
    args = (np.array([0.01, -0.02, 0.6]), np.eye(3), np.array([0.08, 0.1, 0.09]), k, free)
    full, coarse = raycast_ellipsoid(*args), raycast_ellipsoid(*args, block=2)
    assert full is not None and coarse is not None and coarse.inverse is not None
    np.testing.assert_array_equal(full.flat, coarse.flat)
    assert len(coarse.points) <= len(full.flat) / 4 + 2 * 200
    shaded = coarse.flat[_reps(coarse.inverse)]
    np.testing.assert_allclose(coarse.points, full.points[np.searchsorted(full.flat, shaded)], rtol=1e-6)
    assert coarse.expand(coarse.points).shape == full.points.shape
    px = np.array([[20.0, 20.0], [180.0, 30.0], [100.0, 170.0]])
    tris = np.array([[0, 1, 2]])
    m1 = rasterize_mesh(px, np.ones(3), tris, (200, 200))
    m2 = rasterize_mesh(px, np.ones(3), tris, (200, 200), block=2)
    np.testing.assert_array_equal(m1.flat, m2.flat)
    assert m2.inverse is not None and len(m2.bary) < len(m1.bary) / 3
    np.testing.assert_allclose(m2.bary, m1.bary[_reps(m2.inverse)], atol=1e-6)


def _reps(inverse: np.ndarray) -> np.ndarray:
    """Index (into the covered samples) of each shaded sample: where a row first appears."""
    _, first = np.unique(inverse, return_index=True)
    return first


def test_fast_normal_noise_is_standard_normal_and_deterministic() -> None:
    a = standard_normal(np.random.default_rng(1), (400, 500))
    b = standard_normal(np.random.default_rng(1), (400, 500))
    assert a.dtype == np.float32 and a.shape == (400, 500)
    np.testing.assert_array_equal(a, b)
    assert abs(float(a.mean())) < 0.01 and abs(float(a.std()) - 1) < 0.01
    kurtosis = float(np.mean(a.astype(np.float64) ** 4))
    assert abs(kurtosis - 3) < 0.05
    # Fractions within 1 and 2 sigma, as for the normal distribution (68.27 %, 95.45 %).
    assert abs(float(np.mean(np.abs(a) < 1)) - 0.6827) < 0.005
    assert abs(float(np.mean(np.abs(a) < 2)) - 0.9545) < 0.003
    assert not np.array_equal(a, standard_normal(np.random.default_rng(2), (400, 500)))


BASE: dict[str, Any] = dict(sample_id="s", index=0, seed=5, identity=0, identity_seed=42, age=34.0,
                            gender="female", skin_tone=4, light_azimuth=0.0, light_elevation=15.0)


@pytest.mark.parametrize("kw", [dict(), dict(lighting="nir", glasses="sunglasses", head_yaw=-25.0),
                                dict(age=70.0, expression="disgust", camera="a_pillar", seat="passenger")])
def test_pixel_shading_matches_sample_shading_within_a_grey_level(kw: dict[str, Any]) -> None:
    """Shading once per output pixel moves the image by well under one grey level on average (the
    differences sit on edges inside a layer: lids, brows, hairline), and the labels not at all."""
    s = SceneSpec(**{**BASE, **kw})
    per_pixel = render_spec(s, 256, 256, 2, shading="pixel")
    per_sample = render_spec(s, 256, 256, 2, shading="sample")
    diff = np.abs(per_pixel.image.astype(np.int16) - per_sample.image.astype(np.int16))
    assert 0 < float(diff.mean()) < 1.0
    assert float(np.percentile(diff, 99)) < 12
    assert per_pixel.labels == per_sample.labels
