"""Synthetic video clips with a known tone: what the video tests and `demo.tools.bench_live` stylise."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

from ..hub import BUNDLED_DIR

PHOTO = BUNDLED_DIR / "styles" / "wave.jpg"  # any picture with detail, bundled


def write_clip(path: Path, seconds: float = 2.0, width: int = 640, height: int = 360, fps: int = 30,
               tone_hz: float | None = 440.0, sample_rate: int = 48_000) -> Path:
    """A photo panning across the frame (H.264), with a sine tone (AAC) when `tone_hz` is set."""
    photo = np.asarray(Image.open(PHOTO).convert("RGB").resize((width * 3 // 2, height * 3 // 2)))
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=sample_rate, layout="mono") if tone_hz else None
        frames = round(seconds * fps)
        for i in range(frames):
            x = round((photo.shape[1] - width) * i / max(1, frames - 1))
            y = round((photo.shape[0] - height) * i / max(1, frames - 1))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(photo[y : y + height, x : x + width]))
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if audio is not None:
            t = np.arange(round(seconds * sample_rate)) / sample_rate
            samples = (0.5 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
            for start in range(0, len(samples), 1024):
                chunk = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="flt", layout="mono")
                chunk.sample_rate, chunk.pts = sample_rate, start
                container.mux(audio.encode(chunk))
            container.mux(audio.encode(None))
    return path
