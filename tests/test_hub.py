"""The weight resolver against a real local HTTP server that answers like the Hub."""

import dataclasses
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from perceptual_models import cards, hub
from perceptual_models.errors import ConfigError, PickleRefused
from perceptual_models.losses import StyleObjective
from perceptual_models.networks import SRNet, TransformerNet, from_pretrained, save_pretrained
from perceptual_models.tools import publish
from perceptual_models.vgg import load_loss_network, read_vgg_file

from conftest import REPO, VGG_FILE
from hub_server import HubServer

REPO_ID, REVISION = "tester/weights", "v1"


def _model(folder, name, seed):
    torch.manual_seed(seed)
    net, config = TransformerNet(), {"architecture": "transformer", "params": {}, "task": {"style_image": "x.jpg"}}
    return save_pretrained(net, config, folder / name, dtype=torch.float16)


@pytest.fixture()
def hub_repo(tmp_path):
    """A Hub-layout folder with two style models and a manifest."""
    folder = tmp_path / "hub_repo"
    _model(folder, "style/a", 0)
    _model(folder, "style/b", 1)
    publish.prepare_repo(folder)
    return folder


@pytest.fixture()
def bundled(tmp_path, monkeypatch):
    """A bundled copy that differs from the Hub's (different seeds), so origins can be told apart."""
    folder = tmp_path / "bundled"
    _model(folder, "style/a", 10)
    _model(folder, "style/b", 11)
    publish.write_manifest(folder)
    monkeypatch.setattr(hub, "BUNDLED_DIR", folder)
    return folder


@pytest.fixture()
def server(hub_repo, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with HubServer(hub_repo, REPO_ID, REVISION) as running:
        monkeypatch.setenv("HF_ENDPOINT", running.url)
        monkeypatch.setenv(hub.REPO_ENV, REPO_ID)
        monkeypatch.setenv(hub.REVISION_ENV, REVISION)
        monkeypatch.setenv(hub.TIMEOUT_ENV, "2")
        yield running


def test_a_model_name_needs_settings_to_be_looked_up(bundled):
    with pytest.raises(ConfigError, match="needs HubSettings"):
        from_pretrained("style/a")
    assert from_pretrained("style/a", hub.HubSettings(offline=True))[1]["origin"] == "bundled"


@pytest.mark.parametrize("name", ["style/../../demo/examples/x", "../x", "style//x", "/etc/x", "style/.hidden"])
def test_a_name_that_is_a_path_is_refused(name):
    """Names typed into the app are joined to folders: none may lead out of them."""
    settings = hub.HubSettings(offline=True)
    with pytest.raises(ConfigError, match="is not a model or style name"):
        hub.resolve(name, settings)
    with pytest.raises(ConfigError, match="is not a model or style name"):
        hub.resolve_style_image(name, settings)
    assert hub.resolve_style_image("starry_night", settings)[1] == "bundled"


def _same_weights(path_a, path_b) -> bool:
    a, _ = from_pretrained(path_a)
    b, _ = from_pretrained(path_b)
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_downloads_then_serves_from_the_cache_without_the_server(server, hub_repo, bundled):
    settings = hub.HubSettings.from_env()
    assert hub.HubSettings.from_env() is settings  # one reachability check for every default caller
    first = hub.resolve("style/a", settings)
    assert first.origin == f"hub {REPO_ID}@{REVISION}"
    assert _same_weights(first.weights, hub_repo / "style/a.safetensors")
    assert any("GET" in r and "style/a.safetensors" in r for r in server.requests)
    server.stop()
    second = hub.resolve("style/a", dataclasses.replace(settings))  # equal values, a fresh reachability check
    # From the cache alone: huggingface_hub was not asked to reach the dead server (its retries take ~30 s).
    assert second.origin == f"hub cache {REPO_ID}@{REVISION}" and second.weights == first.weights


def test_one_process_uses_two_repos(server, hub_repo, bundled):
    ours = hub.HubSettings.from_env()
    other = dataclasses.replace(ours, repo="tester/elsewhere")  # the server has no such repo
    assert hub.resolve("style/a", ours).origin == f"hub {REPO_ID}@{REVISION}"
    assert hub.resolve("style/a", other).origin == "bundled"
    assert hub.resolve("style/b", ours).origin == f"hub {REPO_ID}@{REVISION}"


def test_offline_with_an_empty_cache_falls_back_to_bundled(monkeypatch, bundled):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = hub.resolve("style/a", hub.HubSettings.from_env())
    assert resolved.origin == "bundled" and resolved.weights == bundled / "style/a.safetensors"
    with pytest.raises(hub.WeightsUnavailable, match=r"offline.*bundled"):
        hub.resolve("style/zzz", hub.HubSettings.from_env())


def test_tampered_download_fails_the_manifest_check(server, hub_repo, bundled):
    weights = hub_repo / "style/b.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"evil")
    with pytest.raises(hub.IntegrityError, match="style/b.safetensors.*does not match manifest.json"):
        hub.resolve("style/b", hub.HubSettings.from_env())


def test_missing_file_falls_back_for_that_file_only(server, hub_repo, bundled):
    server.missing.add("style/b.safetensors")
    assert hub.resolve("style/a", hub.HubSettings.from_env()).origin.startswith("hub")
    fallback = hub.resolve("style/b", hub.HubSettings.from_env())
    assert fallback.origin == "bundled" and _same_weights(fallback.weights, bundled / "style/b.safetensors")


def test_a_server_that_never_answers_times_out(server, bundled, monkeypatch):
    monkeypatch.setenv(hub.TIMEOUT_ENV, "1")
    server.hang = True
    assert hub.HubSettings.from_env().timeout == 1.0
    assert hub.resolve("style/a", hub.HubSettings.from_env()).origin == "bundled"
    assert hub.resolve("style/b", hub.HubSettings.from_env()).origin == "bundled"
    # The client gave up by itself (the server has answered nothing yet), and the dead Hub was asked once.
    assert len(server.hung) == 1 and not server.hung_answered, (server.hung, server.hung_answered)


def test_local_dir_comes_first_and_pickles_are_refused(server, bundled, tmp_path, monkeypatch):
    local = tmp_path / "local"
    _model(local, "style/a", 20)
    (local / "style" / "c.pth").write_bytes(b"\x80\x04pickle")
    monkeypatch.setenv(hub.LOCAL_DIR_ENV, str(local))
    assert hub.resolve("style/a", hub.HubSettings.from_env()).origin == f"local dir {local}"
    assert hub.resolve("style/b", hub.HubSettings.from_env()).origin.startswith("hub")
    with pytest.raises(PickleRefused, match="c.pth: only .safetensors weights are loaded"):
        hub.resolve("style/c", hub.HubSettings.from_env())


def test_vgg_loss_network_resolves_through_the_hub(server, hub_repo, monkeypatch):
    monkeypatch.delenv("PERCEPTUAL_VGG_WEIGHTS")
    state, _, _ = read_vgg_file(VGG_FILE)
    (hub_repo / "loss_network").mkdir()
    save_file({k: v for k, v in state.items() if int(k.split(".")[1]) < 10}, str(hub_repo / "loss_network/vgg16_caffe.safetensors"),
              metadata={"format": "caffe", "arch": "vgg16"})
    publish.prepare_repo(hub_repo)
    network = load_loss_network(["relu2_2"], settings=hub.HubSettings.from_env())
    assert network.source == f"hub {REPO_ID}@{REVISION}" and network.weight_format == "caffe"
    assert torch.equal(network.features[7].weight, state["features.7.weight"])


def test_download_all_prefetches_everything(server, hub_repo):
    names = sorted(r.name for r in hub.download_all(hub.HubSettings.from_env()))
    assert names == ["style/a", "style/b"]
    # Every file was asked for (identical files share one blob, so the GET may be skipped).
    asked = {r.split(f"/resolve/{REVISION}/")[1] for r in server.requests if "/resolve/" in r}
    assert asked >= set(json.loads((hub_repo / "manifest.json").read_text())["files"])


def test_push_folder_has_manifest_and_model_card(tmp_path):
    folder = tmp_path / "release"
    path = save_pretrained(SRNet(4), {"architecture": "srnet", "params": {"scale": 4},
                                      "training": {"iterations": 7}, "evaluation": {"Set5 x4": "30.1 dB"}},
                           folder / "sr/x4_pixel")
    manifest = publish.prepare_repo(folder)
    assert set(manifest["files"]) == {"sr/x4_pixel.safetensors", "sr/x4_pixel.json", "README.md"}
    entry = manifest["files"]["sr/x4_pixel.safetensors"]
    assert entry == {"sha256": hub.sha256(path), "size": path.stat().st_size}
    card = (folder / "README.md").read_text()
    front_matter = card.split("---")[1]
    for field in ("license: mit", "- style-transfer", "datasets:", "arxiv: '1603.08155'"):
        assert field in front_matter
    assert "| `sr/x4_pixel` | srnet | 7 | Set5 x4: 30.1 dB |" in card


def test_push_uploads_the_folder_and_tags_the_commit(server, hub_repo, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", server.url)  # read once, at import
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)  # the stand-in speaks LFS
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    url = publish.push(hub_repo, "tester/pushed", tag="v2")
    repo = server.created["models/tester/pushed"]
    assert repo.files == {p.relative_to(hub_repo).as_posix(): p.read_bytes() for p in hub_repo.rglob("*") if p.is_file()}
    assert {"style/a.safetensors", "style/b.safetensors"} <= repo.lfs
    assert repo.tags == {"v2": url.rsplit("/", 1)[1]} and set(server.authorization) == {"Bearer hf_test"}


def test_export_writes_fp16_with_config_and_card(tmp_path):
    averaged = "exponential moving average over 15 steps, decay 0.999"
    trained = save_pretrained(TransformerNet(), {"architecture": "transformer", "params": {},
                                                  "task": {"task": "style", "style_image": "starry_night.jpg",
                                                           **StyleObjective(style_weight=1e-4).to_dict(),
                                                           "stability_weight": 4e8, "stability_sigma": 0.03},
                                                  "training": {"iterations": 15, "weights": averaged}},
                              tmp_path / "run/model")
    exported = cards.export_model(trained, "style/starry_night", tmp_path / "weights", {"note": "ok"})
    assert exported.stat().st_size < trained.stat().st_size * 0.6
    assert json.loads(exported.with_suffix(".json").read_text())["dtype"] == "float16"
    card = exported.with_suffix(".md").read_text()
    assert "Vincent van Gogh" in card and f"**Weights saved**: {averaged}" in card
    assert "style 0.0001 x style loss" in card and "minimises this same objective" in card
    assert "4e+08 x the output's mean squared change under input noise of std 0.03" in card


def test_hub_list_offline_is_prompt(hub_repo, monkeypatch):
    """Offline, the list asks no server: one that never answers, where the Hub should be, is never asked."""
    with HubServer(hub_repo, REPO_ID, REVISION) as hanging:
        hanging.hang = True
        monkeypatch.setenv("HF_ENDPOINT", hanging.url)
        result = subprocess.run([sys.executable, "-m", "perceptual_models", "hub", "list"], check=False,
                                capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert hanging.hung == []
    for name in hub.model_names():
        assert f"{name}" in result.stdout
    assert all(line.endswith("bundled") for line in result.stdout.splitlines()[1:])


def test_hub_list_names_the_styles_trained_here(tmp_path, monkeypatch):
    trained = save_pretrained(TransformerNet(), {"architecture": "transformer", "params": {},
                                                  "task": {"style_image": "mine.jpg"}}, tmp_path / "run/model")
    cards.export_model(trained, "style/mine", tmp_path / "user")
    (tmp_path / "user" / "jobs" / "mine").mkdir(parents=True)  # a run folder beside it is not a model
    (trained.parent / "model.safetensors").rename(tmp_path / "user" / "jobs" / "mine" / "model.safetensors")
    monkeypatch.setenv("PERCEPTUAL_USER_MODELS", str(tmp_path / "user"))
    result = subprocess.run([sys.executable, "-m", "perceptual_models", "hub", "list"], check=False, capture_output=True,
                            text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    origins = dict(line.split(None, 1) for line in result.stdout.splitlines()[1:])
    assert origins["style/mine"] == hub.TRAINED_HERE and origins["style/starry_night"] == "bundled"
    assert not any("jobs" in name for name in origins)
