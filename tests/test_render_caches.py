"""The renderer's per-identity caches (looks, face shapes, texture fields, mip levels) must change
no pixel and leak no state between renders: a cached array handed out and then changed in place
would alter every later render of that identity."""

from __future__ import annotations

import numpy as np
import pytest

from synthgen.generate.procedural import model as fm
from synthgen.generate.procedural import texture
from synthgen.generate.procedural.backend import ProceduralGenerator
from synthgen.generate.procedural.renderer import clear_identity_caches
from synthgen.spec import SceneSpec


def _spec(**kw: object) -> SceneSpec:
    base: dict[str, object] = dict(sample_id="c", index=0, seed=3, identity=0, identity_seed=11, age=52.0,
                                   gender="male", skin_tone=3)
    return SceneSpec(**{**base, **kw})


def test_shape_face_hands_out_a_fresh_array_each_call() -> None:
    a = fm.shape_face(11, "male", 52.0)
    before = a.copy()
    a += 1.0  # a caller posing the face in place
    b = fm.shape_face(11, "male", 52.0)
    assert np.array_equal(b, before)
    assert b.flags.writeable


def test_cached_looks_and_texture_fields_are_read_only() -> None:
    look = texture.make_look(11, "male", 52.0, 3)
    assert texture.make_look(11, "male", 52.0, 3) is look
    with pytest.raises(ValueError):
        look.skin[0] = 0.0
    fields = texture._identity_fields(11)
    for a in (fields.noise, fields.blotch, fields.detail):
        with pytest.raises(ValueError):
            a[0, 0] = 0.0


def test_texture_levels_and_shared_fields_give_the_uncached_maps() -> None:
    """Level 1 is the 2 x 2 mean of level 0; a texture drawn after the identity's fields were cached
    (by the other light) equals one drawn from an empty cache."""
    clear_identity_caches()
    nir_first = np.array(texture.skin_texture(11, "male", 50, 3, True, "identity", 0))
    rgb_after = np.array(texture.skin_texture(11, "male", 50, 3, False, "identity", 0))
    clear_identity_caches()
    rgb_alone = texture.skin_texture(11, "male", 50, 3, False, "identity", 0)
    assert np.array_equal(rgb_after, rgb_alone)
    assert not np.array_equal(rgb_alone, nir_first)
    half = texture.skin_texture(11, "male", 50, 3, False, "identity", 1)
    assert half.shape == (texture.TEX // 2, texture.TEX // 2, 4)
    assert np.array_equal(half, texture.half_res(rgb_alone))


def test_renders_do_not_depend_on_what_was_rendered_before() -> None:
    """The same spec rendered first, and again after other identities, expressions and lights
    filled the caches, gives the same bytes."""
    clear_identity_caches()
    g = ProceduralGenerator(128, 128)
    probe = _spec(expression="anger", expression_intensity=0.9)
    first = g.render(probe).image
    for i, light in enumerate(("nir", "rgb", "nir")):
        g.render(_spec(sample_id=f"o{i}", lighting=light, expression="happiness", expression_intensity=1.0))
        g.render(_spec(sample_id=f"p{i}", identity_seed=20 + i, lighting=light, age=9.0 + 30 * i))
    assert np.array_equal(g.render(probe).image, first)
