"""The inference rewrites compute the same function as the networks, with better-shaped convolutions."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from perceptual_models.inference import Runner
from perceptual_models.networks import SRCNN, ConvLayer, SRNet, TransformerNet
from perceptual_models.rewrites import SpaceToDepthConv, SubPixelUpsampleConv, rewrite_for_inference


def conv_weights(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.dim() == 4]


def flops(model: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


@pytest.mark.parametrize("make", [
    lambda: TransformerNet(),
    lambda: TransformerNet(norm="batch", upsample="transposed"),
    lambda: SRNet(4),
    lambda: SRNet(8, bicubic_skip=False),
    lambda: SRCNN(4),
], ids=["style", "style-transposed", "sr-x4", "sr-x8-tanh", "srcnn"])
@pytest.mark.parametrize("height, width", [(16, 16), (15, 21), (9, 10)])
def test_rewritten_networks_compute_the_same_function(make, height, width):
    torch.manual_seed(0)
    model = make().eval()
    rewritten = rewrite_for_inference(model)
    x = torch.rand(2, 3, height, width)
    with torch.no_grad():
        torch.testing.assert_close(rewritten(x), model(x), atol=1e-5, rtol=0)
    # The narrowest convolution (to RGB, or to luma in SRCNN) now has 4x the output channels.
    assert min(w.shape[0] for w in conv_weights(rewritten)) == 4 * min(w.shape[0] for w in conv_weights(model))


def test_upsampling_convolutions_lose_most_of_their_multiply_adds():
    torch.manual_seed(0)
    model = TransformerNet().eval()
    rewritten = rewrite_for_inference(model)
    assert sum(isinstance(m, SubPixelUpsampleConv) for m in rewritten.modules()) == 2
    assert sum(isinstance(m, SpaceToDepthConv) for m in rewritten.modules()) == 1
    assert any(isinstance(m, nn.Upsample) for m in model.modules())  # the original is left alone
    x = torch.rand(1, 3, 64, 64)
    # Two upsampling convs are ~24% of the network's multiply-adds; 2.25x fewer each, minus the
    # zero taps the space-to-depth kernel adds.
    assert flops(model, x) / flops(rewritten, x) > 1.1


@pytest.mark.parametrize("kernel", [3, 5, 9])
@pytest.mark.parametrize("height, width", [(7, 7), (8, 13), (1, 2)])
def test_space_to_depth_convolution_matches_on_any_size(kernel, height, width):
    torch.manual_seed(kernel)
    layer = ConvLayer(6, 3, kernel).eval()
    x = torch.rand(1, 6, height + kernel, width + kernel)  # reflection padding needs size > kernel // 2
    with torch.no_grad():
        torch.testing.assert_close(SpaceToDepthConv(layer)(x), layer(x), atol=1e-5, rtol=0)


def test_fast_runner_uses_the_rewritten_network_and_exact_does_not():
    model = TransformerNet()
    fast, exact = Runner(model, {}, torch.device("cpu"), "fast"), Runner(model, {}, torch.device("cpu"), "exact")
    assert any(isinstance(m, SubPixelUpsampleConv) for m in fast.model.modules())
    assert not any(isinstance(m, SubPixelUpsampleConv) for m in exact.model.modules())
