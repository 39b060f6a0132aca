import json

import pytest
import torch

from perceptual_models.errors import PickleRefused, UnreadableWeights, WeightsUnavailable
from perceptual_models.image_io import resize
from perceptual_models.networks import (
    PAPER_TANH_SCALE,
    SRCNN,
    SRNet,
    TransformerNet,
    build,
    from_pretrained,
    save_pretrained,
    scaled_tanh,
)


@pytest.mark.parametrize("height, width", [(32, 32), (33, 47), (18, 21), (8, 8)])
@pytest.mark.parametrize("norm, decoder_norm, upsample", [
    ("instance", None, "nearest-conv"), ("batch", None, "transposed"), ("instance", "none", "nearest-conv"),
    ("frn", "frn", "nearest-conv"),
])
def test_style_network_keeps_the_size(height, width, norm, decoder_norm, upsample):
    net = TransformerNet(norm=norm, upsample=upsample, decoder_norm=decoder_norm).eval().requires_grad_(False)
    out = net(torch.rand(1, 3, height, width))
    assert out.shape == (1, 3, height, width)
    assert 0.5 - PAPER_TANH_SCALE <= out.min().item() and out.max().item() <= 0.5 + PAPER_TANH_SCALE


def test_decoder_norm_defaults_to_the_network_norm_for_older_configs():
    old = TransformerNet(norm="instance")
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) for m in old.decoder.modules()) == 2
    no_decoder_norm = TransformerNet(norm="instance", decoder_norm="none")
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in no_decoder_norm.decoder.modules())
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) for m in no_decoder_norm.modules()) == 13


def test_residual_norm_is_set_apart_from_the_encoder():
    net = TransformerNet(norm="instance", residual_norm="batch", decoder_norm="none")
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) for m in net.encoder.modules()) == 3
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.residuals.modules()) == 10
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in net.residuals.modules())


def test_filter_response_norm_only_rescales_the_channel_around_a_spike():
    """FRN divides by the mean square, not by a variance around a mean: a spike in one pixel rescales the
    rest of its channel by one factor and shifts nothing (instance norm subtracts the spike's share of the
    mean everywhere); the thresholded unit keeps outputs at or above tau."""
    from perceptual_models.networks import FilterResponseNorm

    torch.manual_seed(0)
    norm, instance = FilterResponseNorm(4), torch.nn.InstanceNorm2d(4)
    with torch.no_grad():
        norm.tau.fill_(-10.0)  # no clamping: the normalisation alone
    x = torch.randn(2, 4, 8, 8) + 2.0
    spiked = x.clone()
    spiked[..., 0, 0] += 50.0
    rest = (slice(None), slice(None), slice(1, None))  # every row but the spike's
    ratio = norm(spiked)[rest] / norm(x)[rest]
    assert torch.allclose(ratio, ratio.amax(dim=(2, 3), keepdim=True), rtol=1e-4)  # one factor per channel
    moved = instance(spiked)[rest] / instance(x)[rest]
    assert not torch.allclose(moved, moved.amax(dim=(2, 3), keepdim=True), rtol=0.1)  # it shifts them too

    norm = FilterResponseNorm(4)
    y = norm(x)
    expected = x / x.pow(2).mean(dim=(2, 3), keepdim=True).add(1e-6).sqrt()
    assert torch.allclose(y, expected.clamp(min=0), atol=1e-5)
    y.sum().backward()
    clamped = (expected <= 0).sum(dim=(0, 2, 3)).float()
    assert torch.equal(norm.tau.grad.flatten(), clamped)  # d(sum)/d(tau): one per output held at tau


def test_white_and_black_are_reached_without_saturating_tanh():
    """The blotch fix: at the paper's 150/255 scale, the gradient at pure white/black is still large."""
    x = torch.atanh(torch.tensor([0.5 / PAPER_TANH_SCALE, -0.5 / PAPER_TANH_SCALE])).requires_grad_()
    out = scaled_tanh(x)
    assert torch.allclose(out, torch.tensor([1.0, 0.0]), atol=1e-6)
    out.sum().backward()
    assert (x.grad > 0.15).all()  # 0.5 * tanh would need x = +-inf, where the gradient is 0


@pytest.mark.parametrize("scale", [4, 8])
@pytest.mark.parametrize("height, width", [(9, 9), (10, 13)])
def test_sr_networks_upscale_exactly(scale, height, width):
    lr = torch.rand(1, 3, height, width)
    for net in (SRNet(scale=scale), SRNet(scale=scale, bicubic_skip=False, upsample="transposed"), SRCNN(scale=scale)):
        assert net(lr).shape == (1, 3, height * scale, width * scale)


def test_untrained_residual_networks_start_near_bicubic():
    """With the bicubic skip, an untrained SR network is bicubic plus a small correction."""
    torch.manual_seed(0)
    lr = torch.rand(1, 3, 12, 12)
    bicubic = resize(lr, (48, 48))
    assert (SRCNN(4)(lr) - bicubic).abs().mean() < 0.1
    assert (SRNet(4)(lr) - bicubic).abs().mean() < 0.2


def test_srcnn_keeps_bicubic_chroma():
    from perceptual_models.image_io import rgb_to_ycbcr

    lr = torch.rand(1, 3, 10, 10)
    out, bicubic = SRCNN(4)(lr), resize(lr, (40, 40))
    assert torch.allclose(rgb_to_ycbcr(out)[:, 1:], rgb_to_ycbcr(bicubic)[:, 1:], atol=1e-5)


def test_build_from_config_and_errors():
    built = build({"architecture": "srnet", "params": {"scale": 8}})
    assert isinstance(built, SRNet) and built(torch.rand(1, 3, 9, 9)).shape == (1, 3, 72, 72)
    with pytest.raises(ValueError, match="Unknown architecture"):
        build({"architecture": "unet"})
    with pytest.raises(ValueError, match="Unknown norm"):
        TransformerNet(norm="group")
    with pytest.raises(ValueError, match="Scale must be"):
        SRNet(scale=3)


def test_saved_weights_reload_bit_exactly(tmp_path):
    torch.manual_seed(1)
    net = TransformerNet().eval()
    config = {"architecture": "transformer", "params": {"norm": "instance", "upsample": "nearest-conv"}}
    path = save_pretrained(net, config, tmp_path / "style" / "test")
    assert path.name == "test.safetensors" and json.loads(path.with_suffix(".json").read_text())["dtype"] == "float32"
    loaded, loaded_config = from_pretrained(path)
    for (name, a), (_, b) in zip(net.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    x = torch.rand(1, 3, 20, 20)
    assert torch.equal(net(x), loaded(x))
    assert loaded_config["architecture"] == "transformer"


def test_fp16_weights_reload_as_float32(tmp_path):
    net = SRNet(4).eval()
    path = save_pretrained(net, {"architecture": "srnet", "params": {"scale": 4}}, tmp_path / "m", dtype=torch.float16)
    loaded, _ = from_pretrained(path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    assert torch.allclose(next(loaded.parameters()), next(net.parameters()), atol=1e-3)


def test_pickles_and_missing_configs_are_refused(tmp_path):
    (tmp_path / "model.pth").write_bytes(b"\x80\x04 pickle")
    with pytest.raises(PickleRefused, match="only .safetensors"):
        from_pretrained(tmp_path / "model.pth")
    net = SRNet(4)
    path = save_pretrained(net, {"architecture": "srnet", "params": {"scale": 4}}, tmp_path / "m")
    path.with_suffix(".json").unlink()
    with pytest.raises(WeightsUnavailable, match="Config not found"):
        from_pretrained(path)
    path.with_suffix(".json").write_text(json.dumps({"architecture": "srnet", "params": {"scale": 4}}))
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(UnreadableWeights, match="not a readable safetensors file"):
        from_pretrained(path)
