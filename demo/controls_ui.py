"""The controls of perceptual_models/controls.py as widgets, for the Style and the Live tab alike.

Each widget's callback parameter is the API parameter of the same name, appended after the older
parameters with a default that changes nothing: preserve_color, strength, stroke, mix_style, mix
(and steady for video).
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from perceptual_models.controls import STROKE_RANGE, StyleControls

from .components import ControlSlider

MIX_INFO = ("Our networks each bake in one style (no conditional normalisation), so mixing runs both networks "
            "and blends their outputs: twice the time.")


@dataclass
class ControlWidgets:
    preserve_color: gr.Checkbox
    strength: gr.Slider
    stroke: gr.Slider
    mix_style: gr.Dropdown
    mix: gr.Slider
    steady: gr.Checkbox | None = None

    @property
    def inputs(self) -> list[gr.components.Component]:
        """In the order `controls_from` takes them."""
        return [self.preserve_color, self.strength, self.stroke, self.mix_style, self.mix,
                *([self.steady] if self.steady else [])]


def build_controls(styles: list[str], prefix: str, video: bool = False) -> ControlWidgets:
    """The widgets, with element ids `{prefix}-color`, `{prefix}-strength`, ...; call inside a layout."""
    defaults = StyleControls()
    with gr.Row(elem_id=f"{prefix}-controls"):
        preserve_color = gr.Checkbox(defaults.preserve_color, label="Keep the photo's colours",
                                     info="The painting's strokes in the photo's colours", elem_id=f"{prefix}-color")
        steady = gr.Checkbox(defaults.steady, label="Steady", elem_id=f"{prefix}-steady",
                             info="Still parts stay still from frame to frame (less flicker)") if video else None
    with gr.Row(elem_id=f"{prefix}-sliders"):
        strength = ControlSlider(0, 1, value=defaults.strength, step=0.05, label="Strength",
                                 info="0: the photo, 1: the full style", elem_id=f"{prefix}-strength")
        stroke = ControlSlider(*STROKE_RANGE, value=defaults.stroke, step=0.25, label="Stroke size",
                               info="2: strokes twice as large, 0.5: half (4x the time)", elem_id=f"{prefix}-stroke")
    with gr.Row(elem_id=f"{prefix}-mixing"):
        mix_style = gr.Dropdown(styles, value=defaults.mix_style, label="Mix with a second style",
                                allow_custom_value=True, info=MIX_INFO, elem_id=f"{prefix}-mix-style")
        mix = ControlSlider(0, 1, value=defaults.mix, step=0.05, label="Mix",
                            info="0: the first style, 1: the second", elem_id=f"{prefix}-mix")
    return ControlWidgets(preserve_color, strength, stroke, mix_style, mix, steady)


def controls_from(preserve_color: bool | None, strength: float | None, stroke: float | None, mix_style: str | None,
                  mix: float | None, steady: bool = False) -> StyleControls:
    """The widgets' values as settings; a value an API caller left empty is the default."""
    defaults = StyleControls()
    return StyleControls(
        preserve_color=bool(preserve_color),
        strength=defaults.strength if strength is None else float(strength),
        stroke=defaults.stroke if stroke is None else float(stroke),
        mix_style=mix_style or None,
        mix=defaults.mix if mix is None else float(mix),
        steady=bool(steady))
