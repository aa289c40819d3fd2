"""Prompt templating for the diffusion backend: every requested attribute in words, NIR look, validation."""

from __future__ import annotations

import pytest

from synthgen.config import parse_params
from synthgen.errors import ConfigError
from synthgen.generate.diffusion.config import DiffusionParams
from synthgen.generate.diffusion.prompts import age_words, build_prompt, gaze_words, person_word
from synthgen.spec import SceneSpec


def _spec(**kw: object) -> SceneSpec:
    base = dict(sample_id="a", index=0, seed=1, identity=0, identity_seed=2, age=34.4, gender="female",
                skin_tone=8, expression="happiness", glasses="sunglasses", camera="a_pillar", seat="passenger")
    return SceneSpec(**(base | kw))


def test_default_prompt_spells_out_requested_attributes() -> None:
    p = build_prompt(_spec(), DiffusionParams())
    assert p.positive.startswith("a 34-year-old woman, brown skin, smiling")
    for words in ("wearing dark sunglasses", "A-pillar", "RAW photo"):
        assert words in p.positive, words
    assert "near-infrared" not in p.positive
    assert "cartoon" in p.negative and "saturated" not in p.negative


def test_nir_spec_uses_nir_look_and_negative_words() -> None:
    p = build_prompt(_spec(lighting="nir"), DiffusionParams())
    assert "near-infrared grayscale" in p.positive and "RAW photo" not in p.positive
    assert p.negative.endswith("color, colorful, saturated")


def test_empty_fields_leave_no_dangling_commas() -> None:
    p = build_prompt(_spec(glasses="none"), DiffusionParams())
    assert ", ," not in p.positive and not p.positive.endswith(",") and "glasses" not in p.positive


def test_custom_template_and_words() -> None:
    params = DiffusionParams(prompt="{person} aged {age} ({age_group}), {gender}, {eyes}; {gaze}; {seat}",
                             negative_prompt="not {person}")
    p = build_prompt(_spec(age=71, gender="male", eye_openness=0.0, gaze_yaw=25, gaze_pitch=-20), params)
    assert p.positive == (
        "elderly man aged 71 (70+), male, eyes closed; looking down and to the left; front passenger seat"
    )
    assert p.negative == "not elderly man"


@pytest.mark.parametrize(
    ("age", "gender", "person", "words"),
    [(1.2, "male", "baby boy", "a 1-year-old"), (8, "female", "girl", "an 8-year-old"),
     (16, "male", "teenage boy", "a 16-year-old"), (18, "female", "teenage girl", "an 18-year-old")],
)
def test_age_and_person_words(age: float, gender: str, person: str, words: str) -> None:
    assert person_word(age, gender) == person
    assert age_words(age) == words


def test_gaze_words_follow_the_spec_convention() -> None:
    # Positive yaw looks towards the image's left, positive pitch up (synthgen.geometry).
    assert gaze_words(0, 0) == "looking straight at the camera"
    assert gaze_words(30, 0) == "looking to the left"
    assert gaze_words(-30, 15) == "looking up and to the right"


@pytest.mark.parametrize("template", ["{person} {hair}", "{0} face", "{person"])
def test_bad_templates_are_config_errors(template: str) -> None:
    with pytest.raises(ConfigError, match="generate.diffusion.prompt"):
        parse_params({"generate": {"diffusion": {"prompt": template}}})


@pytest.mark.parametrize("strength", [0, -0.1, 1.5])
def test_strength_outside_0_1_is_rejected(strength: float) -> None:
    with pytest.raises(ConfigError, match=r"strength.*\(0, 1\]"):
        parse_params({"generate": {"diffusion": {"strength": strength}}})


def test_img2img_with_no_denoising_step_is_rejected() -> None:
    with pytest.raises(ConfigError, match="steps x strength"):
        parse_params({"generate": {"diffusion": {"mode": "img2img", "steps": 3, "strength": 0.2}}})
    assert parse_params({"generate": {"diffusion": {"mode": "img2img", "steps": 5, "strength": 0.2}}})


def test_controlnet_mode_needs_a_controlnet() -> None:
    with pytest.raises(ConfigError, match="needs generate.diffusion.controlnet"):
        parse_params({"generate": {"diffusion": {"mode": "controlnet", "controlnet": None}}})
    assert parse_params({"generate": {"diffusion": {"mode": "txt2img", "controlnet": None}}})


def test_facial_hair_words_and_label() -> None:
    """Facial hair reaches the prompt when asked (never for a child), and the default leaves the
    prompt as it was; the backend's label is what the prompt asked for."""
    from synthgen.generate.diffusion.prompts import facial_hair_asked

    man = dict(gender="male", age=40.0)
    assert "with a full beard" in build_prompt(_spec(**man, facial_hair="beard"), DiffusionParams()).positive
    assert "clean-shaven" in build_prompt(_spec(**man, facial_hair="none"), DiffusionParams()).positive
    default = build_prompt(_spec(**man), DiffusionParams()).positive
    assert "beard" not in default and "shaven" not in default and ", ," not in default
    child = _spec(gender="male", age=9.0, facial_hair="beard")
    assert "beard" not in build_prompt(child, DiffusionParams()).positive
    assert facial_hair_asked(child) == "none" and facial_hair_asked(_spec(**man)) == "identity"
