"""Scene spec -> text prompt.

Diffusion models only follow what the text (and the control map) says, so every requested
attribute that the control map cannot carry (age, skin tone, expression, glasses, lighting) is
spelled out in words here. The words are plain, short and common in captions of real photos,
which is what CLIP text encoders were trained on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from synthgen.generate.diffusion.config import DiffusionParams
from synthgen.spec import SceneSpec
from synthgen.vocab import facial_hair_for_age

_EXPRESSION_WORDS = {
    "neutral": "neutral expression, relaxed face",
    "happiness": "smiling happily",
    "sadness": "sad expression, downturned mouth",
    "surprise": "surprised expression, raised eyebrows, open mouth",
    "fear": "fearful expression, wide eyes",
    "disgust": "disgusted expression, wrinkled nose",
    "anger": "angry expression, frowning, tense brows",
}

# Monk skin tone 1..10 in caption words.
_SKIN_WORDS = {
    1: "very fair", 2: "fair", 3: "light", 4: "light olive", 5: "olive",
    6: "tan", 7: "light brown", 8: "brown", 9: "dark brown", 10: "very dark brown",
}

_CAMERA_WORDS = {
    "rearview_mirror": "seen from the rear-view mirror",
    "a_pillar": "three-quarter view from the A-pillar",
    "instrument_cluster": "low angle from the steering column",
}

_SEAT_WORDS = {"driver": "driver's seat", "passenger": "front passenger seat"}

_GLASSES_WORDS = {"none": "", "glasses": "wearing eyeglasses", "sunglasses": "wearing dark sunglasses",
                  "ir_blocking": "wearing dark mirrored sunglasses"}

_FACIAL_HAIR_WORDS = {"identity": "", "none": "clean-shaven", "stubble": "with stubble",
                      "moustache": "with a moustache", "beard": "with a full beard"}


def facial_hair_asked(spec: SceneSpec) -> str:
    """The facial hair a prompt asks for (``identity``: not asked, the model decides). The row's
    ``req_facial_hair`` for this backend."""
    return facial_hair_for_age(spec.facial_hair, spec.age)


@dataclass(frozen=True)
class Prompt:
    positive: str
    negative: str


def person_word(age: float, gender: str) -> str:
    female = gender == "female"
    if age < 3:
        return "baby girl" if female else "baby boy"
    if age < 13:
        return "girl" if female else "boy"
    if age < 20:
        return "teenage girl" if female else "teenage boy"
    if age < 65:
        return "woman" if female else "man"
    return "elderly woman" if female else "elderly man"


def age_words(age: float) -> str:
    years = int(round(age))
    if years < 1:
        return "a newborn"
    article = "an" if str(years).startswith("8") or years in (11, 18) else "a"
    return f"{article} {years}-year-old"


def eyes_words(openness: float) -> str:
    if openness >= 0.75:
        return "eyes open"
    if openness >= 0.25:
        return "half-closed eyes"
    return "eyes closed"


def gaze_words(yaw: float, pitch: float, threshold: float = 10.0) -> str:
    """Gaze in words, from the viewer's side (the spec's positive yaw looks towards the image's left)."""
    parts = []
    if pitch > threshold:
        parts.append("up")
    elif pitch < -threshold:
        parts.append("down")
    if yaw > threshold:
        parts.append("to the left")
    elif yaw < -threshold:
        parts.append("to the right")
    if not parts:
        return "looking straight at the camera"
    return "looking " + " and ".join(parts)


def expression_words(expression: str, intensity: float) -> str:
    words = _EXPRESSION_WORDS[expression]
    if expression != "neutral" and intensity < 0.5:
        return "slightly " + words
    return words


def prompt_fields(spec: SceneSpec, params: DiffusionParams) -> dict[str, str]:
    """Values of every placeholder a template may use (see config.PROMPT_FIELDS)."""
    nir = spec.lighting == "nir"
    return {
        "look": params.nir_look if nir else params.rgb_look,
        "age": f"{spec.age:.0f}",
        "age_words": age_words(spec.age),
        "age_group": spec.age_group,
        "person": person_word(spec.age, spec.gender),
        "gender": spec.gender,
        "skin": _SKIN_WORDS[spec.skin_tone],
        "expression": expression_words(spec.expression, spec.expression_intensity),
        "eyes": eyes_words(spec.eye_openness),
        "gaze": gaze_words(spec.gaze_yaw, spec.gaze_pitch),
        "glasses": _GLASSES_WORDS[spec.glasses],
        "facial_hair": _FACIAL_HAIR_WORDS[facial_hair_asked(spec)],
        "seat": _SEAT_WORDS[spec.seat],
        "camera": _CAMERA_WORDS[spec.camera],
        "scene": "car interior" + (", night" if nir else ""),
    }


def tidy(text: str) -> str:
    """Drop the empty list items a blank field leaves behind (``a, , b`` -> ``a, b``)."""
    text = re.sub(r"\s+", " ", text)
    parts = [p.strip() for p in text.split(",")]
    return ", ".join(p for p in parts if p)


def build_prompt(spec: SceneSpec, params: DiffusionParams) -> Prompt:
    fields = prompt_fields(spec, params)
    negative = params.negative_prompt.format(**fields)
    if spec.lighting == "nir" and params.nir_negative:
        negative = f"{negative}, {params.nir_negative}"
    return Prompt(tidy(params.prompt.format(**fields)), tidy(negative))
