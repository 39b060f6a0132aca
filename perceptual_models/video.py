"""Moving pictures through the style networks: live camera frames and whole video files.

Frames stay in memory from decoder to encoder (uint8 arrays, one reused batch buffer); nothing is
written to disk per frame. Files are read and written with PyAV (FFmpeg's libraries, shipped in
its wheel): H.264 video at the source's frame timing, the source's audio re-encoded as AAC. Only the
file functions import it: a live frame needs PIL alone, as on the lent GPU machines, which have no PyAV.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import VideoError
from .image_io import check_side, fit_size

# What a live frame or an output video can be: the longer side in pixels.
FRAME_SIZES = (192, 256, 384, 512)


def even_size(height: int, width: int, longer_side: int) -> tuple[int, int]:
    """`fit_size` rounded down to even numbers, which H.264's 4:2:0 chroma needs."""
    height, width = fit_size(height, width, longer_side)
    return max(2, height - height % 2), max(2, width - width % 2)


def to_batch(frames: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 frames -> (N, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255)


def to_frames(batch: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] -> (N, H, W, 3) uint8, rounded like an 8-bit file."""
    return batch.clamp(0, 1).mul(255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


# --- live frames ------------------------------------------------------------------------------


def decode_jpeg(data: bytes, longer_side: int) -> np.ndarray:
    """A camera frame (JPEG bytes) -> (1, H, W, 3) uint8 at `longer_side`.

    JPEG's draft mode decodes at 1/2, 1/4 or 1/8 scale inside the DCT, so shrinking a 640x480
    frame costs less than decoding it whole.
    """
    try:
        image = Image.open(io.BytesIO(data))
        height, width = fit_size(image.height, image.width, longer_side)
        image.draft("RGB", (width, height))
        image = image.convert("RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.BILINEAR)
        return np.array(image)[None]  # a writable copy: torch.from_numpy warns on read-only arrays
    except (OSError, SyntaxError, ValueError) as exc:
        raise VideoError(f"A camera frame could not be decoded ({exc}).") from None


def encode_jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    """(H, W, 3) uint8 -> JPEG bytes (a few ms at 512 px; a PNG would take tens)."""
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@dataclass
class FrameTiming:
    decode: float
    network: float
    encode: float

    @property
    def total(self) -> float:
        return self.decode + self.network + self.encode


def stylize_jpeg(runner: Callable[[torch.Tensor], torch.Tensor], data: bytes,
                 longer_side: int) -> tuple[bytes, tuple[int, int], FrameTiming]:
    """One live frame: JPEG in, stylised JPEG out, with (width, height) and where the time went."""
    start = time.perf_counter()
    frame = decode_jpeg(data, longer_side)
    decoded = time.perf_counter()
    output = to_frames(runner(to_batch(frame)))[0]
    stylized = time.perf_counter()
    jpeg = encode_jpeg(output)
    done = time.perf_counter()
    return jpeg, (output.shape[1], output.shape[0]), FrameTiming(decoded - start, stylized - decoded, done - stylized)


# --- video files ------------------------------------------------------------------------------


@dataclass
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    duration: float  # seconds
    frames: int  # estimated from duration and frame rate when the container does not say
    has_audio: bool


def probe(path: str | Path) -> VideoInfo:
    """Open a file and describe its video stream; anything unreadable is a `VideoError`."""
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"No such video file: {path.name}")
    if path.stat().st_size == 0:
        raise VideoError(f"The file is empty (0 bytes): {path.name}")
    try:
        with av.open(str(path)) as container:
            if container.format.name == "image2" or container.format.name.endswith("_pipe"):
                raise VideoError(f"{path.name} is a still image, not a video (the Style transfer tab takes photos).")
            if not container.streams.video:
                raise VideoError(f"{path.name} has no video track.")
            stream = container.streams.video[0]
            fps = stream.average_rate or stream.guessed_rate
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            else:
                duration = 0.0
            if not fps or not stream.codec_context.width:
                raise VideoError(f"{path.name}: the video track has no frame rate or size.")
            frames = stream.frames or round(duration * float(fps))
            return VideoInfo(stream.codec_context.width, stream.codec_context.height, Fraction(fps), duration,
                             frames, bool(container.streams.audio))
    except VideoError:
        raise
    except av.FFmpegError as exc:
        raise VideoError(f"{path.name} is not a video we can read ({exc.strerror.lower()}).") from None
    except (OSError, ValueError) as exc:
        raise VideoError(f"{path.name} is not a video we can read ({exc}).") from None


@dataclass
class VideoProgress:
    frames_done: int
    frames_total: int
    elapsed: float
    output: Path | None = None  # set on the last event, when the file is complete
    trimmed_to: float | None = None  # seconds, when the input was longer than allowed

    @property
    def fps(self) -> float:
        return self.frames_done / self.elapsed if self.elapsed > 0 else 0.0


def stylize_video(
    runner: Callable[[torch.Tensor], torch.Tensor], source: str | Path, output: str | Path, size: int,
    max_seconds: float | None = None, batch_size: int = 4,
) -> Iterator[VideoProgress]:
    """Stylise every frame of `source` into an H.264 mp4 at `output`, reporting progress per batch.

    The frames keep their timestamps (so the frame rate and duration are the source's) and the
    audio is re-encoded as AAC. Frames are shrunk to `size` (longer side) by FFmpeg's scaler and
    run through `runner` `batch_size` at a time. Inputs longer than `max_seconds` are cut there.
    Closing the generator early (a cancelled request) removes the partial file.
    """
    import av

    info = probe(source)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    limit = max_seconds if max_seconds is not None and info.duration > max_seconds else None
    total = min(info.frames, round(limit * float(info.fps))) if limit else info.frames
    height, width = even_size(info.height, info.width, size)
    check_side(height, width, f"At {size} px each frame")
    start, done, complete = time.perf_counter(), 0, False
    try:
        with av.open(str(source)) as inp, av.open(str(output), "w", format="mp4") as out:
            video_in = inp.streams.video[0]
            video_in.thread_type = "AUTO"
            video_out = out.add_stream("libx264", rate=info.fps)
            video_out.width, video_out.height, video_out.pix_fmt = width, height, "yuv420p"
            video_out.time_base = video_in.time_base
            video_out.options = {"crf": "20", "preset": "veryfast"}
            audio_in = inp.streams.audio[0] if inp.streams.audio else None
            audio_out = None
            if audio_in is not None and audio_in.rate:
                audio_out = out.add_stream("aac", rate=audio_in.rate, layout=audio_in.layout.name)
            buffer = np.empty((batch_size, height, width, 3), np.uint8)
            pending: list[av.VideoFrame] = []  # source frames whose pixels sit in `buffer`
            first_pts = video_in.start_time or 0  # the output starts with the first picture

            def flush() -> Iterator[VideoProgress]:
                nonlocal done
                if not pending:
                    return
                styled = to_frames(runner(to_batch(buffer[: len(pending)])))
                for source_frame, pixels in zip(pending, styled, strict=True):
                    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
                    frame.pts, frame.time_base = source_frame.pts - first_pts, video_in.time_base
                    out.mux(video_out.encode(frame))
                done += len(pending)
                pending.clear()
                yield VideoProgress(done, max(total, done), time.perf_counter() - start, trimmed_to=limit)

            streams = [s for s in (video_in, audio_in if audio_out else None) if s is not None]
            for packet in inp.demux(*streams):
                for frame in packet.decode():
                    if frame.pts is None:
                        continue
                    seconds = float(frame.pts * frame.time_base) - float(first_pts * video_in.time_base)
                    if seconds < 0 or (limit is not None and seconds >= limit):
                        continue
                    if packet.stream is video_in:
                        pixels = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
                        buffer[len(pending)] = pixels.to_ndarray()
                        pending.append(frame)
                        if len(pending) == batch_size:
                            yield from flush()
                    else:
                        frame.pts = None  # the encoder numbers the samples from the first one it gets
                        out.mux(audio_out.encode(frame))
            yield from flush()
            if done == 0:
                raise VideoError(f"{Path(source).name}: no video frame could be decoded.")
            out.mux(video_out.encode(None))
            if audio_out is not None:
                out.mux(audio_out.encode(None))
        complete = True
    except av.FFmpegError as exc:
        raise VideoError(f"{Path(source).name}: decoding failed part-way ({exc.strerror.lower()}).") from None
    finally:
        if not complete:
            output.unlink(missing_ok=True)
    yield VideoProgress(done, done, time.perf_counter() - start, output=output, trimmed_to=limit)

