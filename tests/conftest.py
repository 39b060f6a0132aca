"""Shared fixtures. Data comes from ../shared (override with PERCEPTUAL_SHARED); tests write only
to temporary folders, and never touch the network unless they start their own local server.

Without the shared folder the tests that need it are skipped with one reason; under CI=true a
missing folder is an error instead (CI must test everything)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from chromium import chromium_context

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PERCEPTUAL_SHARED", REPO.parent / "shared"))
VGG_FILE = SHARED / "models" / "vgg16_caffe_features.safetensors"
STYLES = SHARED / "data" / "styles"
TRAIN_DATA = SHARED / "data" / "train"
SET5 = SHARED / "data" / "sr_benchmark" / "Set5"
PAPER_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
SHARED_PATHS = (VGG_FILE, STYLES, TRAIN_DATA, SET5)
SHARED_FIXTURES = {"loss_network", "photo", "starry_night"}
MISSING = [path for path in SHARED_PATHS if not path.exists()]

torch.set_num_threads(int(os.environ.get("PERCEPTUAL_TEST_THREADS", min(2, os.cpu_count() or 1))))


def _needs_shared_data(item: pytest.Item) -> bool:
    """A test that uses a fixture made from the shared data, or whose module imports one of its paths."""
    module_values = vars(item.module).values() if getattr(item, "module", None) else ()
    return bool(SHARED_FIXTURES & set(getattr(item, "fixturenames", ()))) or any(
        value is path for value in module_values for path in SHARED_PATHS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not MISSING:
        return
    needing = [item for item in items if _needs_shared_data(item)]
    message = (f"the shared data folder {SHARED} is incomplete (missing {', '.join(str(p) for p in MISSING)}); "
               "put it at ../shared or point PERCEPTUAL_SHARED at it")
    if os.environ.get("CI") == "true" and needing:
        raise pytest.UsageError(f"CI=true and {message}: {len(needing)} tests need it.")
    for item in needing:
        item.add_marker(pytest.mark.skip(reason=message))


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's caches or reaches the real Hub or torchvision's servers."""
    home = tmp_path_factory.mktemp("hf_home")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    monkeypatch.delenv("PERCEPTUAL_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("PERCEPTUAL_USER_MODELS", str(home / "user-models"))
    monkeypatch.delenv("PERCEPTUAL_HUB_REPO", raising=False)
    monkeypatch.delenv("PERCEPTUAL_HUB_REVISION", raising=False)
    if VGG_FILE.is_file():
        monkeypatch.setenv("PERCEPTUAL_VGG_WEIGHTS", str(VGG_FILE))
    else:  # the bundled loss network, as on a fresh install
        monkeypatch.delenv("PERCEPTUAL_VGG_WEIGHTS", raising=False)


@pytest.fixture(scope="session")
def loss_network():
    """The paper's VGG-16 (caffe weights from shared), through relu4_3."""
    from perceptual_models.vgg import load_loss_network

    return load_loss_network(PAPER_LAYERS, weights=VGG_FILE)


@pytest.fixture(scope="session")
def photo() -> torch.Tensor:
    """A natural training photo, 64 px on the longer side."""
    from perceptual_models.image_io import load_image, resize_longer_side

    path = sorted((TRAIN_DATA / "urban100").glob("*.jpg"))[11]
    return resize_longer_side(load_image(path), 64)


@pytest.fixture(scope="session")
def starry_night() -> torch.Tensor:
    from perceptual_models.image_io import load_image, resize_longer_side

    return resize_longer_side(load_image(STYLES / "starry_night.jpg"), 64)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """A browser test module's screenshots; copied to $PERCEPTUAL_SCREENSHOTS when set (CI artefacts)."""
    folder = tmp_path_factory.mktemp("screenshots")
    yield folder
    target = os.environ.get("PERCEPTUAL_SCREENSHOTS")
    if target:
        shutil.copytree(folder, target, dirs_exist_ok=True)
    print(f"\nscreenshots: {folder}")


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    """One headless Chromium (fake camera) per browser test module."""
    with chromium_context(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context
