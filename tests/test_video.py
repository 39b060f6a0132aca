"""Video files and live frames through the style network (perceptual_models/video.py, the CLI)."""

import io

import av
import numpy as np
import pytest
from PIL import Image

from perceptual_models import cli
from perceptual_models.hub import HubSettings
from perceptual_models.inference import Runner, pick_device
from perceptual_models.tools.clips import write_clip
from perceptual_models.video import VideoError, decode_jpeg, probe, stylize_jpeg, stylize_video

from conftest import REPO

TONE_HZ = 440.0


@pytest.fixture(scope="module")
def runner():
    return Runner.load("style/starry_night", pick_device("cpu"), settings=HubSettings(offline=True))  # bundled


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """2 s, 640x360, 30 fps, with a 440 Hz tone."""
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=2.0, tone_hz=TONE_HZ)


def _audio(path):
    """Mono samples, sample rate and the strongest frequency (Hz) of the first second."""
    with av.open(str(path)) as container:
        rate = container.streams.audio[0].rate
        samples = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(audio=0)])
    second = samples[:rate]
    return samples, rate, np.argmax(np.abs(np.fft.rfft(second))) * rate / len(second)


def test_round_trip_keeps_frame_rate_duration_and_the_tone(runner, clip, tmp_path):
    events = list(stylize_video(runner, clip, tmp_path / "out.mp4", size=96))
    final = events[-1]
    assert final.output == tmp_path / "out.mp4" and final.frames_done == 60 and final.trimmed_to is None
    assert [e.frames_done for e in events[:-1]] == sorted(e.frames_done for e in events[:-1])  # progress per batch
    source, result = probe(clip), probe(final.output)
    assert (result.width, result.height) == (96, 54) and result.fps == source.fps == 30
    assert result.frames == 60 and abs(result.duration - source.duration) < 1 / 30
    with av.open(str(final.output)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
    samples_in, rate_in, _ = _audio(clip)
    samples_out, rate_out, peak = _audio(final.output)
    assert rate_out == rate_in and abs(peak - TONE_HZ) <= 1
    assert abs(len(samples_out) - len(samples_in)) / rate_in < 0.05  # the sound lasts as long as before
    with av.open(str(final.output)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert frame.std() > 10  # a picture, not a blank frame


def test_long_clips_are_cut_at_the_limit(runner, clip, tmp_path):
    final = list(stylize_video(runner, clip, tmp_path / "out.mp4", size=64, max_seconds=1.0))[-1]
    assert final.trimmed_to == 1.0 and final.frames_done == 30
    result = probe(final.output)
    assert abs(result.duration - 1.0) < 1 / 30
    samples, rate, _ = _audio(final.output)
    assert abs(len(samples) / rate - 1.0) < 0.05


def test_a_clip_without_sound(runner, tmp_path):
    silent = write_clip(tmp_path / "silent.mp4", seconds=0.5, width=320, height=240, tone_hz=None)
    final = list(stylize_video(runner, silent, tmp_path / "out.mp4", size=64, batch_size=3))[-1]
    result = probe(final.output)
    assert not result.has_audio and result.frames == 15 and (result.width, result.height) == (64, 48)


def test_stopping_early_leaves_no_partial_file(runner, clip, tmp_path):
    events = stylize_video(runner, clip, tmp_path / "out.mp4", size=64)
    first = next(events)
    assert first.output is None and first.frames_done == 4
    events.close()  # what a cancelled request does
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("case, message", [
    ("text", "not a video we can read"), ("empty", "empty"), ("truncated", "not a video we can read"),
    ("photo", "still image"),
])
def test_unusable_files_give_a_clear_message(runner, clip, tmp_path, case, message):
    path = tmp_path / f"{case}.mp4"
    if case == "text":
        path.write_text("this is not a video\n" * 10)
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        path.write_bytes(clip.read_bytes()[:5000])
    else:
        path = REPO / "demo" / "examples" / "chelsea.jpg"
    with pytest.raises(VideoError, match=message):
        list(stylize_video(runner, path, tmp_path / "out.mp4", size=64))
    assert not (tmp_path / "out.mp4").exists()


def _jpeg(width, height):
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_live_frame_is_shrunk_on_decode_and_stylised(runner):
    assert decode_jpeg(_jpeg(640, 480), 256).shape == (1, 192, 256, 3)
    jpeg, size, timing = stylize_jpeg(runner, _jpeg(640, 480), 192)
    assert size == (192, 144) and Image.open(io.BytesIO(jpeg)).size == (192, 144)
    assert timing.network > 0 and timing.total >= timing.network
    with pytest.raises(ValueError, match="camera frame could not be decoded"):
        decode_jpeg(b"\xff\xd8 not really a jpeg", 256)


def test_cli_stylize_video(clip, tmp_path, capsys):
    out = tmp_path / "cli.mp4"
    assert cli.main(["stylize-video", "--model", "style/wave", str(clip), "-o", str(out), "--size", "64",
                     "--max-seconds", "0.5", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "15 frames at 30 fps, cut at 0.5 s" in printed and probe(out).frames == 15
    assert cli.main(["stylize-video", "--model", "style/wave", str(REPO / "README.md"), "-o", str(out)]) == 2
    assert "not a video we can read" in capsys.readouterr().err
    assert cli.main(["stylize-video", "--model", "style/wave", str(clip), "-o", str(out), "--size", "6"]) == 2
    assert "At 6 px each frame is only 6x" in capsys.readouterr().err  # too small for the network's padding
