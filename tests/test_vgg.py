import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from perceptual_models.errors import ConfigError, PickleRefused
from perceptual_models.hub import VGG_WEIGHTS_ENV, HubSettings
from perceptual_models.vgg import (
    CAFFE_MEAN_BGR,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LossNetwork,
    LossNetworkUnavailable,
    layer_names,
    load_loss_network,
    read_vgg_file,
    resolve_weights,
)

from conftest import REPO, VGG_FILE


def test_layer_names_follow_the_paper():
    vgg16, vgg19 = layer_names("vgg16"), layer_names("vgg19")
    assert len(vgg16) == 31 and len(vgg19) == 37  # torchvision's features modules
    assert vgg16.index("relu2_2") == 8 and vgg16.index("relu4_3") == 22 and "relu5_3" in vgg16
    assert "relu5_4" in vgg19 and "relu5_4" not in vgg16


def test_truncated_at_the_deepest_requested_layer(loss_network):
    assert loss_network.layers == ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    assert len(loss_network.features) == 23  # conv1_1 .. relu4_3
    shallow = load_loss_network(["relu2_2"], weights=VGG_FILE)
    assert len(shallow.features) == 9
    out = shallow(torch.rand(1, 3, 32, 32))
    assert set(out) == {"relu2_2"} and out["relu2_2"].shape == (1, 128, 16, 16)


def test_a_call_for_fewer_layers_stops_at_the_deepest_of_them(loss_network):
    """Content targets need relu2_2 only: the same activations as the full pass, without the layers below."""
    image = torch.rand(2, 3, 32, 32)
    full = loss_network(image)
    calls = []
    hooks = [module.register_forward_hook(lambda *_: calls.append(1)) for module in loss_network.features]
    try:
        part = loss_network(image, ["relu2_2", "relu1_2"])
    finally:
        for hook in hooks:
            hook.remove()
    assert set(part) == {"relu1_2", "relu2_2"} and len(calls) == 9  # conv1_1 .. relu2_2
    assert all(torch.equal(part[name], full[name]) for name in part)
    with pytest.raises(ConfigError, match="does not compute"):
        load_loss_network(["relu2_2"], weights=VGG_FILE)(image, ["relu3_3"])


def test_weights_match_the_file(loss_network):
    state, weight_format, arch = read_vgg_file(VGG_FILE)
    assert (weight_format, arch) == ("caffe", "vgg16")
    assert torch.equal(loss_network.features[21].weight, state["features.21.weight"].float())


def test_caffe_normalisation_of_a_known_pixel(loss_network):
    pixel = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)  # RGB
    expected = torch.tensor([0.0 - CAFFE_MEAN_BGR[0], 127.5 - CAFFE_MEAN_BGR[1], 255.0 - CAFFE_MEAN_BGR[2]])
    assert torch.allclose(loss_network.normalize(pixel).flatten(), expected)


def test_torchvision_normalisation_of_a_known_pixel():
    state, _, _ = read_vgg_file(VGG_FILE)
    network = LossNetwork(["relu1_2"], state, "torchvision")
    pixel = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)
    expected = (torch.tensor([1.0, 0.5, 0.0]) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(network.normalize(pixel).flatten(), expected, atol=1e-6)


def test_frozen_but_differentiable(loss_network):
    image = torch.rand(1, 3, 32, 32, requires_grad=True)
    loss_network(image)["relu3_3"].pow(2).mean().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss_network.parameters())
    loss_network.train()
    assert not loss_network.training


def test_unknown_layer_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown VGG layer.*relu9_9.*available: relu1_1"):
        load_loss_network(["relu9_9"], weights=VGG_FILE)


def test_explicit_path_then_env_variable(monkeypatch, tmp_path):
    _, _, source = resolve_weights("vgg16", settings=HubSettings.from_env())
    assert source == f"file {VGG_FILE}"  # from PERCEPTUAL_VGG_WEIGHTS (set by conftest)
    monkeypatch.setenv(VGG_WEIGHTS_ENV, str(tmp_path / "missing.safetensors"))
    _, _, source = resolve_weights("vgg16", path=VGG_FILE, settings=HubSettings.from_env())
    assert source == f"file {VGG_FILE}"  # the explicit path wins over the variable
    with pytest.raises(LossNetworkUnavailable, match="not found"):
        resolve_weights("vgg16", settings=HubSettings.from_env())
    with pytest.raises(LossNetworkUnavailable, match="no HubSettings to look one up"):
        resolve_weights("vgg16")  # neither a file nor where to look


def test_pickle_files_are_refused(tmp_path):
    path = tmp_path / "vgg16.pth"
    path.write_bytes(b"not even read")
    with pytest.raises(PickleRefused, match="only .safetensors"):
        resolve_weights("vgg16", path=path)


def test_truncated_weights_file_says_what_is_missing(tmp_path):
    state, _, _ = read_vgg_file(VGG_FILE)
    shallow = tmp_path / "shallow.safetensors"
    save_file({k: v for k, v in state.items() if int(k.split(".")[1]) < 5}, str(shallow),
              metadata={"format": "caffe", "arch": "vgg16"})
    assert load_loss_network(["relu1_2"], weights=shallow)(torch.rand(1, 3, 8, 8))["relu1_2"].shape[1] == 64
    with pytest.raises(LossNetworkUnavailable, match="stop before relu4_3"):
        load_loss_network(["relu4_3"], weights=shallow)
    shallow.write_bytes(b"not a safetensors file")
    with pytest.raises(LossNetworkUnavailable, match="not a readable safetensors file"):
        load_loss_network(["relu1_2"], weights=shallow)


def test_fresh_offline_install_uses_the_bundled_vgg16(monkeypatch):
    """No variable, empty HF cache, offline: the embedded fp16 copy (through relu4_3) is the loss network."""
    monkeypatch.delenv(VGG_WEIGHTS_ENV)
    network = load_loss_network(["relu2_2", "relu4_3"], settings=HubSettings.from_env())
    assert network.source == "bundled" and network.weight_format == "caffe"
    full, _, _ = read_vgg_file(VGG_FILE)
    for index in (0, 19):  # conv1_1 and conv4_3
        bundled = network.features[index].weight
        assert torch.allclose(bundled, full[f"features.{index}.weight"], rtol=1e-3, atol=1e-4)
    image = torch.rand(1, 3, 32, 32)
    exact = load_loss_network(["relu4_3"], weights=VGG_FILE)(image)["relu4_3"]
    assert (network(image)["relu4_3"] - exact).abs().max() < 1e-2 * exact.abs().max()
    with pytest.raises(LossNetworkUnavailable, match="stop before relu5_1"):
        load_loss_network(["relu5_1"], settings=HubSettings.from_env())


def test_offline_with_nothing_names_the_variable(monkeypatch):
    """VGG-19 has no bundled copy: offline, with nothing cached, the error says how to provide one."""
    monkeypatch.delenv(VGG_WEIGHTS_ENV)
    with pytest.raises(LossNetworkUnavailable, match=VGG_WEIGHTS_ENV):
        resolve_weights("vgg19", settings=HubSettings.from_env())


def test_torchvision_weights_from_its_cache(monkeypatch, tmp_path):
    """The torchvision path (for weights not bundled), as a user with internet gets it after the download."""
    import torchvision

    monkeypatch.delenv(VGG_WEIGHTS_ENV)
    torch.manual_seed(0)
    reference = torchvision.models.vgg19().state_dict()
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(reference, checkpoints / Path(torchvision.models.VGG19_Weights.IMAGENET1K_V1.url).name)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    network = load_loss_network(["relu2_2"], arch="vgg19", settings=HubSettings.from_env())
    assert network.weight_format == "torchvision" and "torchvision" in network.source
    assert torch.equal(network.features[7].weight, reference["features.7.weight"])


def test_torchvision_download_failure_is_a_clear_error(monkeypatch):
    """Online mode, but the download fails (here: a proxy that refuses): clear error, no traceback."""
    monkeypatch.delenv(VGG_WEIGHTS_ENV)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    for proxy in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    with pytest.raises(LossNetworkUnavailable, match=f"{VGG_WEIGHTS_ENV}.*torchvision download"):
        resolve_weights("vgg19", settings=HubSettings.from_env())


def test_info_command_prints_the_source():
    result = subprocess.run([sys.executable, "-m", "perceptual_models", "info"], check=False, capture_output=True,
                            text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"from file {VGG_FILE}" in result.stdout and "torch" in result.stdout
    assert re.search(r"^runtime +\d+ threads", result.stdout, re.MULTILINE)  # what runtime.configure chose
