"""Skin albedo maps in the face mesh's texture space (UV = the mean face seen from the front).

Why a texture instead of per-vertex colours: brows, the lash line, lips, wrinkles and stubble are
finer than the mesh's triangles, and detectors rely on exactly those dark/light structures. The map
is drawn with OpenCV in 2D once per (identity, age, lighting) and sampled per pixel with cv2.remap;
because it is attached to the vertices, features follow expressions and eyelids.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import cv2
import numpy as np

from synthgen.generate.procedural import model as fm
from synthgen.generate.procedural.noise import standard_normal
from synthgen.vocab import facial_hair_for_age

TEX = 256

# Monk Skin Tone scale swatches (sRGB), 1 = lightest .. 10 = darkest.
MONK_SRGB = np.array([
    [246, 237, 228], [243, 231, 219], [247, 234, 208], [234, 218, 186], [215, 189, 150],
    [160, 126, 86], [130, 92, 67], [96, 65, 52], [58, 49, 42], [41, 36, 32],
], float) / 255.0

HAIR_SRGB = np.array([[30, 22, 18], [60, 40, 28], [105, 75, 45], [165, 130, 85], [120, 55, 30]], float) / 255.0


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, float)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055)


@dataclass(frozen=True)
class Look:
    """Colours and style of one identity at one age (drawn from identity_seed)."""

    skin: np.ndarray  # linear RGB
    lips: np.ndarray
    hair: np.ndarray
    brow: np.ndarray
    iris: np.ndarray
    clothes: np.ndarray
    long_hair: bool
    bald: float  # 0 full hair .. 1 bald crown
    stubble: float
    brow_thickness: float
    hairline: float = 0.0  # metres the hairline sits lower (>0) or higher (<0) than average
    hair_volume: float = 1.0  # scale of the long-hair volume


def skin_colour(skin_tone: int, u: np.ndarray) -> np.ndarray:
    """The sRGB skin of one identity: its Monk swatch, lighter or darker by ``u[0]`` (about
    +-4 %), a little redder or less red by ``u[1]`` and yellower or less yellow by ``u[2]`` (about
    +-2 % each), from three draws in [0.96, 1.04].

    Why not one factor per channel: the light swatches' red and green differ by only 4-5 %, so
    independent +-4 % jitter gave 15 % of the lightest identities (and 5-7 % of tones 2-3) more
    green than red, a sickly grey-green face no camera records (renderer <= 0.8.2); skin keeps
    red above green above blue."""
    tilt = np.array([1.0 + 0.5 * (u[1] - 1.0), 1.0, 1.0 - 0.5 * (u[2] - 1.0)])
    return np.asarray(MONK_SRGB[skin_tone - 1] * u[0] * tilt)


@lru_cache(maxsize=512)
def make_look(identity_seed: int, gender: str, age: float, skin_tone: int) -> Look:
    """Colours and style of one identity at one age. Greying starts in the mid-thirties and is
    nearly white by 70-75: hair colour is the strongest age cue the age model sees at 64 x 64.

    Cached (a frame asks for it up to three times, and identities repeat across a plan); its arrays
    are read-only so that no caller can change a cached look."""
    rng = np.random.default_rng([identity_seed, 2])
    skin_srgb = skin_colour(skin_tone, rng.uniform(0.96, 1.04, 3))
    skin = srgb_to_linear(np.clip(skin_srgb, 0, 1))
    lips = skin * np.array([1.0, 0.62, 0.62]) * (0.85 if skin_tone <= 5 else 0.8)
    dark = skin_tone >= 5
    hair_i = rng.choice(5, p=[0.45, 0.3, 0.1, 0.08, 0.07] if not dark else [0.75, 0.2, 0.05, 0.0, 0.0])
    grey = float(np.clip((age - 35) / 35, 0, 1)) * rng.uniform(0.8, 1.0)
    hair_srgb = HAIR_SRGB[hair_i] * (1 - grey) + np.array([0.86, 0.86, 0.84]) * grey
    if age < 3:
        hair_srgb = hair_srgb * 0.6 + skin_srgb * 0.4
    hair = srgb_to_linear(hair_srgb)
    iris_srgb = [np.array([0.35, 0.22, 0.12]), np.array([0.25, 0.4, 0.55]), np.array([0.35, 0.42, 0.25])][
        int(rng.choice(3, p=[0.7, 0.18, 0.12] if skin_tone <= 4 else [0.97, 0.02, 0.01]))]
    clothes = srgb_to_linear(rng.uniform(0.05, 0.6, 3))
    male = gender == "male"
    long_hair = bool(rng.random() < (0.08 if male else 0.9)) and age >= 3
    bald = float(np.clip((age - 45) / 30, 0, 1) * rng.uniform(0, 1)) if male and rng.random() < 0.5 else 0.0
    stubble = float(rng.uniform(0.5, 1.0)) if male and age >= 18 and rng.random() < 0.75 else 0.0
    hr = np.random.default_rng([identity_seed, 4])  # a separate stream: earlier draws stay as they were
    look = Look(skin, lips, hair, hair * 0.8, srgb_to_linear(iris_srgb), clothes, long_hair, bald, stubble,
                float(rng.uniform(0.9, 1.3) * (1.4 if male else 0.75)),
                hairline=float(hr.normal(0, 0.007)), hair_volume=float(hr.uniform(0.85, 1.15)))
    for colour in (look.skin, look.lips, look.hair, look.brow, look.iris, look.clothes):
        colour.setflags(write=False)
    return look


def _uvpx(idx: list[int]) -> np.ndarray:
    return np.round(fm.load_model().uv[idx] * TEX * 16).astype(np.int32)


@lru_cache(maxsize=1)
def _feature_masks() -> dict[str, np.ndarray]:
    """Identity-independent feature masks in texture space (float32 in [0, 1])."""
    m = fm.load_model()
    masks: dict[str, np.ndarray] = {}

    def canvas() -> np.ndarray:
        return np.zeros((TEX, TEX), np.float32)

    lips = canvas()
    outer = _uvpx(fm.LIP_OUTER_UPPER + fm.LIP_OUTER_LOWER[::-1])
    cv2.fillPoly(lips, [outer], 1.0, cv2.LINE_AA, shift=4)
    masks["lips"] = cv2.GaussianBlur(lips, (0, 0), 1.2)
    line = canvas()
    cv2.polylines(line, [_uvpx(fm.LIP_INNER_UPPER)], False, 1.0, 2, cv2.LINE_AA, shift=4)
    masks["mouth_line"] = cv2.GaussianBlur(line, (0, 0), 0.8)
    lash, lower_lash, socket, brow, nostril = canvas(), canvas(), canvas(), canvas(), canvas()
    for side in (lambda ids: ids, m.left):
        up = side(fm.R_EYE_UPPER)
        lo = side(fm.R_EYE_LOWER)
        cv2.polylines(lash, [_uvpx(up)], False, 1.0, 3, cv2.LINE_AA, shift=4)
        cv2.polylines(lower_lash, [_uvpx(lo)], False, 1.0, 1, cv2.LINE_AA, shift=4)
        eye_c = m.uv[up + lo].mean(0) * TEX
        cv2.ellipse(socket, (int(eye_c[0]), int(eye_c[1] - 3)), (26, 16), 0, 0, 360, 1.0, -1)
        b = _uvpx(side(fm.R_BROW_UPPER) + side(fm.R_BROW_LOWER)[::-1])
        cv2.fillPoly(brow, [b], 1.0, cv2.LINE_AA, shift=4)
    for i in (fm.NOSE_TIP,):
        tip = m.uv[i] * TEX
        for s in (-1, 1):
            cv2.ellipse(nostril, (int(tip[0] + s * 8), int(tip[1] + 9)), (5, 3), s * 20, 0, 360, 1.0, -1)
    masks["lash"] = cv2.GaussianBlur(lash, (0, 0), 0.9)
    masks["lower_lash"] = cv2.GaussianBlur(lower_lash, (0, 0), 0.9)
    masks["lash_wide"] = np.minimum(cv2.GaussianBlur(lash, (0, 0), 1.6) * 1.6, 1.0)  # the lashes' reach
    masks["socket"] = cv2.GaussianBlur(socket, (0, 0), 8)
    masks["brow"] = brow
    masks["nostril"] = cv2.GaussianBlur(nostril, (0, 0), 2.0)
    # Lower face (stubble region): below the nose, faded at the edges.
    uv = m.uv
    yy, xx = np.mgrid[0:TEX, 0:TEX] / TEX
    nose_y = uv[fm.NOSE_TIP, 1]
    chin_y = uv[fm.CHIN, 1]
    lower = np.clip((yy - nose_y - 0.02) / 0.05, 0, 1) * (yy < chin_y + 0.02)
    # Keep the lips' surroundings clear: stubble there reads as a mouth expression to fer.
    lips_c = uv[[13, 14]].mean(0)
    mouth_r = np.sqrt(((xx - lips_c[0]) / 0.13) ** 2 + ((yy - lips_c[1]) / 0.07) ** 2)
    lower = lower * np.clip(mouth_r - 1.0, 0, 1) ** 0.5
    masks["lower_face"] = cv2.GaussianBlur(lower.astype(np.float32), (0, 0), 4)
    # Requested facial hair (spec.facial_hair): a moustache over the upper lip, from the nose to the
    # lip line and past the mouth corners; a full beard over the whole lower face around the lips.
    moustache = canvas()
    lip_top = uv[fm.LIP_OUTER_UPPER] * TEX
    lip_top[0] += (-6, -1)
    lip_top[-1] += (6, -1)
    under_nose = lip_top + (0.0, -0.6 * (lip_top[:, 1].min() - nose_y * TEX) - 2)
    band = np.concatenate([lip_top, under_nose[::-1]])
    cv2.fillPoly(moustache, [np.round(band * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    masks["moustache"] = cv2.GaussianBlur(moustache, (0, 0), 1.5) * (1 - masks["lips"])
    full = np.clip((yy - nose_y - 0.02) / 0.04, 0, 1) * (yy < chin_y + 0.025)
    full = cv2.GaussianBlur(full.astype(np.float32), (0, 0), 3)
    masks["beard"] = np.maximum(full, masks["moustache"]) * np.clip(1 - 1.6 * masks["lips"], 0, 1)
    # Wrinkle lines: forehead, nasolabial folds, crow's feet.
    wr = canvas()
    top = uv[fm.FOREHEAD] * TEX
    for k in range(3):
        cv2.ellipse(wr, (int(top[0]), int(top[1] + 10 + 7 * k)), (42 - 4 * k, 6), 0, 200, 340, 1.0, 1)
    for s in (-1, 1):
        p0 = uv[fm.NOSE_TIP] * TEX + np.array([s * 18, 2])
        p1 = uv[61 if s < 0 else 291] * TEX + np.array([s * 6, 4])
        cv2.line(wr, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 1.0, 1, cv2.LINE_AA)
        c = uv[33 if s < 0 else 263] * TEX
        for a in (-25, 0, 25):
            d = np.array([s * np.cos(np.radians(a)), np.sin(np.radians(a))])
            cv2.line(wr, tuple(int(v) for v in c + d * 6), tuple(int(v) for v in c + d * 16), 1.0, 1, cv2.LINE_AA)
    masks["wrinkles"] = cv2.GaussianBlur(wr, (0, 0), 0.7)
    # Deep lines of old age, drawn thicker than the early wrinkles: more forehead lines, marionette
    # lines from the mouth corners to the jaw, deep nasolabial folds. (Under-eye bag lines were
    # dropped: next to the lower lid they cost MediaPipe eye-contour accuracy.)
    old = canvas()
    for k in range(5):
        cv2.ellipse(old, (int(top[0]), int(top[1] + 8 + 6 * k)), (46 - 3 * k, 5), 0, 195, 345, 1.0, 2, cv2.LINE_AA)
    for s in (-1, 1):
        p0 = uv[61 if s < 0 else 291] * TEX + np.array([s * 2, 3])
        p1 = p0 + np.array([s * 5, 22])
        cv2.line(old, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 1.0, 2, cv2.LINE_AA)
        p0 = uv[fm.NOSE_TIP] * TEX + np.array([s * 16, 0])
        p1 = uv[61 if s < 0 else 291] * TEX + np.array([s * 8, 8])
        cv2.line(old, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 1.0, 3, cv2.LINE_AA)
    masks["old_lines"] = cv2.GaussianBlur(old, (0, 0), 0.9)
    cheek = canvas()
    for i in (50, int(m.mirror[50])):
        p = uv[i] * TEX
        cv2.circle(cheek, (int(p[0]), int(p[1])), 16, 1.0, -1)
    masks["cheeks"] = cv2.GaussianBlur(cheek, (0, 0), 8)
    # Broad age shading: a fold is a soft shadow under a soft highlight, not a drawn line. Tear
    # troughs and eye bags under the lower lids, deep nasolabial and marionette folds, hollow
    # temples and cheeks, the jowl line.
    dark, light = canvas(), canvas()
    for s in (-1, 1):
        lo_lid = uv[145 if s < 0 else 374] * TEX
        cv2.ellipse(dark, (int(lo_lid[0]), int(lo_lid[1] + 9)), (15, 4), -s * 12, 0, 180, 1.0, 3, cv2.LINE_AA)
        cv2.ellipse(light, (int(lo_lid[0]), int(lo_lid[1] + 5)), (12, 3), -s * 12, 0, 180, 1.0, 3, cv2.LINE_AA)
        wing = uv[98 if s < 0 else 327] * TEX
        corner = uv[61 if s < 0 else 291] * TEX
        p0, p1 = wing + np.array([s * 3, -2]), corner + np.array([s * 6, 4])
        cv2.line(dark, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 1.0, 4, cv2.LINE_AA)
        cv2.line(light, tuple(int(v) for v in p0 + [s * 5, 0]), tuple(int(v) for v in p1 + [s * 6, -2]), 1.0, 4,
                 cv2.LINE_AA)
        m0 = corner + np.array([s * 2, 4])
        cv2.line(dark, tuple(int(v) for v in m0), tuple(int(v) for v in m0 + [s * 6, 26]), 1.0, 3, cv2.LINE_AA)
        cheek = uv[50 if s < 0 else int(m.mirror[50])] * TEX
        cv2.circle(dark, (int(cheek[0] + s * 14), int(cheek[1] + 16)), 12, 0.6, -1)
        temple = uv[70 if s < 0 else int(m.mirror[70])] * TEX
        cv2.circle(dark, (int(temple[0] + s * 6), int(temple[1] + 4)), 10, 0.5, -1)
    masks["age_dark"] = cv2.GaussianBlur(dark, (0, 0), 3.0)
    masks["age_light"] = cv2.GaussianBlur(light, (0, 0), 3.0)
    # Where freckles go: across the nose bridge and the upper cheeks.
    zone = canvas()
    nose = uv[fm.NOSE_TIP] * TEX
    cv2.rectangle(zone, (int(nose[0] - 70), int(nose[1] - 32)), (int(nose[0] + 70), int(nose[1] + 12)), 1.0, -1)
    masks["freckle_zone"] = zone
    return masks


def _blurred_noise(rng: np.random.Generator, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(standard_normal(rng, (TEX, TEX)), (0, 0), sigma)


class _Fields(NamedTuple):
    """An identity's random texture fields, in the order its texture stream draws them."""

    brow_sigma: float
    noise: np.ndarray  # fine grain, blurred at 1.5 texels
    blotch: np.ndarray  # mottling, blurred at 4 texels
    detail: np.ndarray  # uniform [0, 1): stubble, strands, freckles
    rest: dict[str, Any]  # the stream's state after them: the marks and spots draw on from here


@lru_cache(maxsize=128)
def _identity_fields(identity_seed: int) -> _Fields:
    """The first draws of an identity's texture stream, which no age, gender, light or facial hair
    changes. Why cached apart from the texture: the RGB and the NIR texture of one identity (and its
    textures at other ages) draw the same fields, and drawing and blurring them was a third of a
    texture's cost. Read-only: every texture of the identity shares them."""
    rng = np.random.default_rng([identity_seed, 3])
    brow_sigma = 1.0 + 0.4 * rng.random()
    noise = _blurred_noise(rng, 1.5)
    blotch = _blurred_noise(rng, 4.0)
    detail = rng.random((TEX, TEX), dtype=np.float32)
    for a in (noise, blotch, detail):
        a.setflags(write=False)
    return _Fields(brow_sigma, noise, blotch, detail, dict(rng.bit_generator.state))


def _mix(tex: np.ndarray, colour: np.ndarray, w: np.ndarray) -> None:
    """In place: ``tex = tex * (1 - w) + colour * w`` on a planar (3, TEX, TEX) map (w: (TEX, TEX)).
    Planar channels keep every operation a contiguous float32 loop; broadcasting over a trailing
    axis of 3 was several times slower, with the same per-element arithmetic."""
    keep = 1.0 - w
    col = np.asarray(colour, np.float32)
    for c in range(3):
        tex[c] *= keep
        tex[c] += w * col[c]


def facial_hair_drawn(requested: str, look: Look, age: float) -> str:
    """What ``spec.facial_hair`` draws on this identity: its own stubble (or none) for
    ``identity``, nothing on anyone under 16, else the request. The row's ``req_facial_hair``;
    ``look`` must be the one the texture is drawn with (its age bin decides the stubble)."""
    if requested == "identity":
        return "stubble" if look.stubble > 0 else "none"
    return facial_hair_for_age(requested, age)


def half_res(tex: np.ndarray) -> np.ndarray:
    """A map at half resolution, each texel the mean of 2 x 2 (a mip level)."""
    return np.asarray(cv2.resize(tex, (tex.shape[1] // 2, tex.shape[0] // 2), interpolation=cv2.INTER_AREA))


def skin_texture(identity_seed: int, gender: str, age_bin: int, skin_tone: int, nir: bool,
                 facial_hair: str = "identity", level: int = 0) -> np.ndarray:
    """``_skin_texture`` at mip ``level`` (0: full, 1: half resolution), each level computed once
    per identity: a 256 x 256 render reads level 1 every frame."""
    if level == 0:
        return _skin_texture(identity_seed, gender, age_bin, skin_tone, nir, facial_hair)
    return _skin_texture_mip(identity_seed, gender, age_bin, skin_tone, nir, facial_hair, level)


@lru_cache(maxsize=128)
def _skin_texture_mip(identity_seed: int, gender: str, age_bin: int, skin_tone: int, nir: bool,
                      facial_hair: str, level: int) -> np.ndarray:
    """Level >= 1 of ``skin_texture``, cached apart from the full-resolution maps so that the two
    caches do not take each other's places. Level 1 is averaged down from the four planes, before
    they are interleaved: a 256 x 256 render never needs the full-resolution interleaved map, and
    interleaving it cost a sixth of a texture (the same values: the area filter works per channel)."""
    if level == 1:
        planes = _skin_planes(identity_seed, gender, age_bin, skin_tone, nir, facial_hair)
        out = np.asarray(cv2.merge([half_res(p) for p in planes]))
    else:
        out = half_res(skin_texture(identity_seed, gender, age_bin, skin_tone, nir, facial_hair, level - 1))
    out.setflags(write=False)
    return out


@lru_cache(maxsize=128)
def _skin_texture(identity_seed: int, gender: str, age_bin: int, skin_tone: int, nir: bool,
                  facial_hair: str = "identity") -> np.ndarray:
    """``_skin_planes`` interleaved: the full-resolution (TEX, TEX, 4) map."""
    out = np.asarray(cv2.merge(list(_skin_planes(identity_seed, gender, age_bin, skin_tone, nir, facial_hair))))
    out.setflags(write=False)  # cached: shared between renders
    return out


@lru_cache(maxsize=128)
def _skin_planes(identity_seed: int, gender: str, age_bin: int, skin_tone: int, nir: bool,
                 facial_hair: str = "identity") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Albedo and gloss planes, each (TEX, TEX) float32: linear albedo R, G, B (equal for NIR) and the
    share of the skin's specular sheen each point keeps (hair-covered lashes and brows keep little).
    ``age_bin`` is the age rounded to 5 years (wrinkles change slowly), keeping the cache useful.
    ``facial_hair`` is what to draw as ``facial_hair_drawn`` resolved it from the spec's exact age
    (``identity`` still lets this bin's look decide).

    Colour layers (lips, brows, stubble) are mixed in first; every darkening layer (pores, lash
    line, socket, wrinkles, spots) is then multiplied into one grey shading map and applied once:
    all in float32, which made this the cheapest of the per-identity steps (it was a third of the
    render time when each spec brought a new identity). Per-identity skin detail (mottling, moles
    and freckles at identity-fixed places) gives recognisers something that stays the same across
    pose, light and expression."""
    age = float(age_bin)
    look = make_look(identity_seed, gender, age, skin_tone)
    mk = _feature_masks()
    fields = _identity_fields(identity_seed)
    rng = np.random.default_rng()
    rng.bit_generator.state = fields.rest  # the same stream as drawing the fields here
    if nir:
        # Skin reflects NIR strongly whatever its melanin; features keep a weaker contrast.
        base = np.full(3, 0.62 - 0.012 * (skin_tone - 1))
        lips = base * 0.85
        brow = base * (0.55 if look.hair.mean() < 0.1 else 0.75)
        contrast = 0.6
    else:
        base, lips, brow, contrast = look.skin, look.lips, look.brow, 1.0
    tex = np.empty((3, TEX, TEX), np.float32)  # planar while drawing: see _mix
    tex[:] = np.asarray(base, np.float32)[:, None, None]
    _mix(tex, lips, mk["lips"])
    bw: np.ndarray = cv2.GaussianBlur(np.clip(mk["brow"] * look.brow_thickness, 0, 1).astype(np.float32), (0, 0),
                                      fields.brow_sigma)
    _mix(tex, brow * 0.85, 0.85 * bw)
    noise, blotch, detail = fields.noise, fields.blotch, fields.detail
    drawn = facial_hair_drawn(facial_hair, look, age) if facial_hair == "identity" else facial_hair
    beard = brow if not nir else base * 0.3
    if drawn == "stubble":
        st = mk["lower_face"] * (0.45 + 0.5 * cv2.GaussianBlur((detail < 0.45).astype(np.float32), (0, 0), 0.6))
        _mix(tex, beard, (0.75 * contrast * (look.stubble or 0.8)) * st)
    elif drawn in ("moustache", "beard"):
        # Dense hair hides the skin: strands as vertical streaks of the identity's fixed detail field.
        strands = cv2.GaussianBlur(detail, (0, 0), sigmaX=0.5, sigmaY=2.5)
        strands = np.clip(0.55 + 2.5 * (strands - 0.5), 0.2, 1.0)
        _mix(tex, beard, (0.92 * mk[drawn]) * strands)
    # One grey shading map for every darkening layer.
    grain = 0.02 if age < 14 else 0.05 + 0.05 * np.clip((age - 40) / 40, 0, 1)
    shade = 1 + grain * contrast * noise
    shade *= 1 - 0.55 * mk["mouth_line"]
    shade *= 1 - 0.35 * contrast * mk["socket"]
    shade *= (1 - 0.8 * mk["lash"]) * (1 - 0.35 * mk["lower_lash"])
    if gender == "female" and age >= 16:
        # Eye make-up: a darker lash line (a cue the 32 x 32 gender chip keeps); kept light so that
        # closed lids still read as skin, not as a dark iris.
        shade *= np.clip(1 - 0.35 * mk["lash"] - 0.15 * mk["lower_lash"], 0, 1)
    shade *= 1 - 0.6 * mk["nostril"]
    # Identity marks: a few moles and (for light skin) freckles at identity-fixed places.
    marks = np.zeros((TEX, TEX), np.float32)
    for _ in range(int(rng.integers(0, 4))):
        x, y = rng.uniform(50, 206), rng.uniform(60, 220)
        cv2.circle(marks, (int(x), int(y)), int(rng.integers(1, 3)), 1.0, -1)
    if skin_tone <= 4 and rng.random() < 0.35:
        marks = np.maximum(marks, 0.5 * (mk["freckle_zone"] * (detail > 0.985)))
    shade *= 1 - 0.45 * contrast * cv2.GaussianBlur(marks, (0, 0), 0.8)
    if age > 30:
        k_age = min((age - 30) / 40, 1.0)
        shade *= 1 - k_age * 0.55 * contrast * mk["wrinkles"]
        shade *= 1 - k_age * 0.35 * contrast * mk["age_dark"] + k_age * 0.12 * contrast * mk["age_light"]
        shade *= 1 - k_age**1.5 * 0.5 * contrast * mk["old_lines"]
        # Uneven, blotchy old skin and age spots (weaker in NIR, where melanin barely shows).
        shade *= 1 + 0.12 * k_age * contrast * blotch
        if age > 50:
            spots = np.zeros((TEX, TEX), np.float32)
            for _ in range(int(6 + 18 * min((age - 50) / 30, 1.0))):
                x, y = rng.uniform(40, 216), rng.uniform(20, 200)
                cv2.circle(spots, (int(x), int(y)), int(rng.integers(2, 5)), 1.0, -1)
            shade *= 1 - 0.3 * contrast * cv2.GaussianBlur(spots, (0, 0), 1.2)
    else:
        shade *= 1 + 0.04 * contrast * blotch  # faint mottling at any age, per identity
    tex *= shade[None]
    # Blush on the cheeks (green and blue absorbed, red kept).
    blush = (0.12 * contrast) * mk["cheeks"]
    for c, absorb in ((1, 1.0), (2, 0.8)):
        tex[c] *= 1 - blush * np.float32(absorb)
    # Fourth channel: how much of the skin's specular sheen a point keeps. Lashes and brows are hair,
    # which covers the skin's sheen: without this a shiny lid (strong on dark skin once the camera
    # exposes for it) drew a bright band over the lash line, and a shut eye read as an open one.
    gloss = (1 - 0.95 * mk["lash_wide"]) * (1 - 0.8 * bw)
    planes = (tex[0], tex[1], tex[2], np.ascontiguousarray(gloss, np.float32))
    for p in planes:
        p.setflags(write=False)  # cached: shared between renders
    return planes


@lru_cache(maxsize=16)
def expression_folds(expression: str, level: int = 0) -> np.ndarray:
    """``_expression_folds`` at mip ``level`` (see ``skin_texture``), computed once."""
    out = _expression_folds(expression) if level == 0 else half_res(expression_folds(expression, level - 1))
    out.setflags(write=False)
    return out


@lru_cache(maxsize=8)
def _expression_folds(expression: str) -> np.ndarray:
    """Darkening map (TEX, TEX) float32 in [0, 1] of the skin folds an expression creates: the
    vertical glabella furrows of a lowered brow (anger, disgust), horizontal forehead lines of raised
    brows (surprise, fear; the short central ones of sadness's raised inner brows), the nose-bridge
    wrinkles of disgust and deepened nasolabial folds. Why: at the 64 x 64 pixels an expression model
    looks at, these creases carry as much of the expression as the landmark motion does."""
    m = fm.load_model()
    uv = m.uv * TEX
    fold = np.zeros((TEX, TEX), np.float32)

    def line(p0: np.ndarray, p1: np.ndarray, w: int = 2, val: float = 1.0) -> None:
        cv2.line(fold, tuple(int(round(c)) for c in p0), tuple(int(round(c)) for c in p1), val, w, cv2.LINE_AA)

    cx = TEX / 2
    brow_y = uv[55, 1]
    if expression in ("anger", "disgust"):
        for s in (-1, 1):  # glabella: two vertical furrows between the brow heads
            line(np.array([cx + s * 5, brow_y - 14]), np.array([cx + s * 4, brow_y + 10]), 3)
        line(np.array([cx - 10, brow_y + 12]), np.array([cx + 10, brow_y + 12]), 2, 0.7)
    if expression in ("anger", "disgust"):
        for s in (-1, 1):  # the shadow a lowered brow casts over the upper lid
            c = uv[[159, 145] if s < 0 else [386, 374]].mean(0)
            cv2.ellipse(fold, (int(c[0] + s * 2), int(c[1] - 9)), (19, 8), s * 8, 0, 360, 0.6, -1, cv2.LINE_AA)
    if expression == "disgust":
        for s in (-1, 1):  # nose wrinkles: short oblique creases on both sides of the bridge
            for k in range(3):
                y = uv[168, 1] + 4 + 6 * k
                line(np.array([cx + s * 4, y]), np.array([cx + s * 14, y - 4]), 2)
    if expression in ("surprise", "fear"):
        top = uv[fm.FOREHEAD, 1]
        half = 40 if expression == "surprise" else 26
        for k in range(3):
            cv2.ellipse(fold, (int(cx), int(top + 16 + 8 * k)), (half - 3 * k, 5), 0, 200, 340, 1.0, 2, cv2.LINE_AA)
    if expression in ("sadness", "fear"):
        for k in range(2):  # raised inner brows: short lines bowed up in the middle
            cv2.ellipse(fold, (int(cx), int(brow_y - 18 - 7 * k)), (16, 4), 0, 180, 360, 1.0, 2, cv2.LINE_AA)
    if expression in ("anger", "disgust", "happiness", "sadness"):
        for s in (-1, 1):  # nasolabial folds from the nose wing to beside the mouth corner
            p0 = uv[98 if s < 0 else 327] + np.array([s * 4, -2])
            p1 = uv[61 if s < 0 else 291] + np.array([s * 7, 6 if expression != "sadness" else 12])
            line(p0, p1, 2, 0.8)
    return cv2.GaussianBlur(fold, (0, 0), 1.0)
