"""Model names to weight files: a local folder, the Hugging Face Hub, or the copy bundled here.

A name such as `style/starry_night`, `sr/x4_feat`, `srcnn/x4` or `loss_network/vgg16_caffe` is
`<name>.safetensors` (+ `<name>.json`) in a folder with this layout (the Hub repo and the bundled
copy are the same):

    style/<name>.safetensors|.json|.md   sr/x4_pixel.*  sr/x4_feat.*  sr/x8_*.*  srcnn/x4.*
    styles/<name>.jpg   loss_network/vgg16_caffe.safetensors (optional)
    manifest.json (sha256 and size of every file)   README.md (model card)

Resolution order: $PERCEPTUAL_WEIGHTS_DIR, then the Hub ($PERCEPTUAL_HUB_REPO at
$PERCEPTUAL_HUB_REVISION, through huggingface_hub's cache, honouring HF_HUB_OFFLINE and
HF_ENDPOINT), then the bundled copy. Files from the Hub are checked against its manifest: a
mismatch is an error, never a silent fallback.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import IntegrityError, PickleRefused, WeightsUnavailable

LOCAL_DIR_ENV = "PERCEPTUAL_WEIGHTS_DIR"
REPO_ENV, REVISION_ENV, TIMEOUT_ENV = "PERCEPTUAL_HUB_REPO", "PERCEPTUAL_HUB_REVISION", "PERCEPTUAL_HUB_TIMEOUT"
DEFAULT_REPO = "perceptual-losses/johnson2016"
DEFAULT_REVISION = "v1"  # a tag created by `hub push --tag v1`: the app never follows a moving branch
DEFAULT_TIMEOUT = 5.0
BUNDLED_DIR = Path(__file__).parent / "weights"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")
# How long a reachability check of the Hub is trusted (see `_reachable`).
_RETRY_AFTER_SECONDS = 60.0
_reachability: dict[str, tuple[float, bool]] = {}


@dataclass(frozen=True)
class Resolved:
    name: str
    weights: Path
    config: Path | None
    origin: str  # "local dir <path>", "hub <repo>@<revision>", "hub cache <repo>@<revision>", "bundled"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_settings() -> tuple[str, str, float]:
    """(repo id, revision, timeout seconds), read from the environment at call time."""
    timeout = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)
    return os.environ.get(REPO_ENV) or DEFAULT_REPO, os.environ.get(REVISION_ENV) or DEFAULT_REVISION, timeout


def _refuse_pickles(folder: Path, name: str) -> None:
    for suffix in PICKLE_SUFFIXES:
        if (folder / f"{name}{suffix}").is_file():
            raise PickleRefused(folder / f"{name}{suffix}")


def _find_in(folder: Path, name: str, origin: str) -> Resolved | None:
    weights = folder / f"{name}.safetensors"
    if not weights.is_file():
        _refuse_pickles(folder, name)
        return None
    config = weights.with_suffix(".json")
    return Resolved(name, weights, config if config.is_file() else None, origin)


# --- the Hub -------------------------------------------------------------------------------


def _download(repo: str, revision: str, filename: str, timeout: float, cache_only: bool) -> Path:
    from huggingface_hub import hf_hub_download

    cache_dir = os.environ.get("HF_HUB_CACHE") or Path(
        os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    ) / "hub"
    return Path(hf_hub_download(
        repo, filename, revision=revision, cache_dir=cache_dir, etag_timeout=timeout,
        endpoint=_endpoint(), local_files_only=cache_only,
    ))


def _endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def _reachable(repo: str, revision: str, timeout: float) -> bool:
    """One quick HEAD on the manifest, remembered for a minute.

    huggingface_hub retries a failed request with back-off for ~30 s before using its cache; probing
    first keeps an offline or dead Hub down to one `timeout` for the whole app.
    """
    key = f"{_endpoint()}/{repo}@{revision}"
    checked = _reachability.get(key)
    if checked and time.monotonic() - checked[0] < _RETRY_AFTER_SECONDS:
        return checked[1]
    request = urllib.request.Request(f"{_endpoint()}/{repo}/resolve/{revision}/manifest.json", method="HEAD")
    try:
        urllib.request.urlopen(request, timeout=timeout).close()
        ok = True
    except urllib.error.HTTPError:
        ok = True  # the server answered (404, 401...): reachable, huggingface_hub reports the rest
    except (OSError, ValueError):
        ok = False  # DNS failure, refused, timed out, proxy error
    _reachability[key] = (time.monotonic(), ok)
    return ok


def _fetch(filename: str) -> tuple[Path, str] | None:
    """A file of the Hub repo, from the network or huggingface_hub's cache; None if unavailable."""
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo, revision, timeout = hub_settings()
    cache_only = offline() or not _reachable(repo, revision, timeout)
    try:
        path = _download(repo, revision, filename, timeout, cache_only)
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError):
        return None  # not cached (offline), not in the repo (404), no such repo/revision, server error
    return path, (f"hub cache {repo}@{revision}" if cache_only else f"hub {repo}@{revision}")


def _hub_manifest() -> dict | None:
    fetched = _fetch("manifest.json")
    if fetched is None:
        return None
    return json.loads(fetched[0].read_text())


def _verify(path: Path, filename: str, manifest: dict) -> None:
    entry = manifest.get("files", {}).get(filename)
    if entry is None:
        raise IntegrityError(f"{filename} is not listed in the Hub repo's manifest.json; refusing to load it.")
    if path.stat().st_size != entry["size"] or sha256(path) != entry["sha256"]:
        raise IntegrityError(
            f"{filename} from the Hub does not match manifest.json (sha256/size differ): refusing to load it. "
            "Delete it from the huggingface_hub cache and download again."
        )


def _from_hub(name: str) -> Resolved | None:
    manifest = _hub_manifest()
    if manifest is None:
        return None
    fetched = _fetch(f"{name}.safetensors")
    if fetched is None:
        if any(f"{name}{suffix}" in manifest.get("files", {}) for suffix in PICKLE_SUFFIXES):
            raise PickleRefused(f"{name} (on the Hub only as a pickle file)")
        return None
    weights, origin = fetched
    _verify(weights, f"{name}.safetensors", manifest)
    config = None
    if f"{name}.json" in manifest.get("files", {}):
        fetched_config = _fetch(f"{name}.json")
        if fetched_config is not None:
            config = fetched_config[0]
            _verify(config, f"{name}.json", manifest)
    return Resolved(name, weights, config, origin)


# --- resolution ----------------------------------------------------------------------------


def resolve(name: str) -> Resolved:
    """Find `name` in $PERCEPTUAL_WEIGHTS_DIR, on the Hub, then in the bundled copy."""
    tried = []
    local = os.environ.get(LOCAL_DIR_ENV)
    if local:
        found = _find_in(Path(local), name, f"local dir {local}")
        if found:
            return found
        tried.append(f"{LOCAL_DIR_ENV}={local}")
    found = _from_hub(name)
    if found:
        return found
    repo, revision, _ = hub_settings()
    tried.append(f"the Hub ({repo}@{revision}{', offline' if offline() else ''})")
    found = _find_in(BUNDLED_DIR, name, "bundled")
    if found:
        return found
    tried.append("the bundled weights")
    raise WeightsUnavailable(f"No weights named {name!r} (looked in {', '.join(tried)}).")


def resolve_asset(relative: str) -> tuple[Path, str] | None:
    """A non-weight file of the layout (e.g. `styles/starry_night.jpg`), in the same order; None if absent."""
    local = os.environ.get(LOCAL_DIR_ENV)
    if local and (Path(local) / relative).is_file():
        return Path(local) / relative, f"local dir {local}"
    manifest = _hub_manifest()
    if manifest and relative in manifest.get("files", {}):
        fetched = _fetch(relative)
        if fetched is not None:
            _verify(fetched[0], relative, manifest)
            return fetched
    if (BUNDLED_DIR / relative).is_file():
        return BUNDLED_DIR / relative, "bundled"
    return None


def model_names(folder: Path = BUNDLED_DIR) -> list[str]:
    """Every `<name>` with a `<name>.safetensors` in a Hub-layout folder."""
    return sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.safetensors"))


def available_models() -> list[str]:
    """Names known locally, on the Hub (from its manifest) or bundled."""
    names = set(model_names(BUNDLED_DIR))
    local = os.environ.get(LOCAL_DIR_ENV)
    if local and Path(local).is_dir():
        names |= set(model_names(Path(local)))
    manifest = _hub_manifest()
    if manifest:
        names |= {f[: -len(".safetensors")] for f in manifest.get("files", {}) if f.endswith(".safetensors")}
    return sorted(names)


def download_all() -> list[Resolved]:
    """Prefetch every model of the Hub repo into huggingface_hub's cache (progress bars)."""
    manifest = _hub_manifest()
    if manifest is None:
        repo, revision, _ = hub_settings()
        raise WeightsUnavailable(f"Could not reach {repo}@{revision} or read its manifest.json.")
    resolved = []
    for filename in sorted(manifest.get("files", {})):
        fetched = _fetch(filename)
        if fetched is None:
            raise WeightsUnavailable(f"{filename} is listed in the manifest but could not be downloaded.")
        _verify(fetched[0], filename, manifest)
        if filename.endswith(".safetensors"):
            resolved.append(_from_hub(filename[: -len(".safetensors")]))
    return resolved
