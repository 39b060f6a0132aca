"""Model names to weight files: a local folder, the Hugging Face Hub, or the copy bundled here.

A name such as `style/starry_night`, `sr/x4_feat`, `srcnn/x4` or `loss_network/vgg16_caffe` is
`<name>.safetensors` (+ `<name>.json`) in a folder with this layout (the Hub repo and the bundled
copy are the same):

    style/<name>.safetensors|.json|.md   sr/x4_pixel.*  sr/x4_feat.*  sr/x8_*.*  srcnn/x4.*
    styles/<name>.jpg   loss_network/vgg16_caffe.safetensors (optional)
    manifest.json (sha256 and size of every file)   README.md (model card)

Resolution order: $PERCEPTUAL_WEIGHTS_DIR, then the models trained here (the app's "Train your
own style" tab, in $PERCEPTUAL_USER_MODELS, default ~/.local/share/perceptual-losses/user-models,
same layout), then the Hub ($PERCEPTUAL_HUB_REPO at
$PERCEPTUAL_HUB_REVISION, through huggingface_hub's cache, honouring HF_HUB_OFFLINE and
HF_ENDPOINT), then the bundled copy. Files from the Hub are checked against its manifest: a
mismatch is an error, never a silent fallback. Those variables (and $PERCEPTUAL_VGG_WEIGHTS, an
explicit loss-network file) are read in one place, `HubSettings.from_env`, which only the entry
points call (app.py, the command lines); everything below takes the `HubSettings` as a value.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, IntegrityError, PickleRefused, WeightsUnavailable

LOCAL_DIR_ENV = "PERCEPTUAL_WEIGHTS_DIR"
VGG_WEIGHTS_ENV = "PERCEPTUAL_VGG_WEIGHTS"
USER_DIR_ENV = "PERCEPTUAL_USER_MODELS"
TRAINED_HERE = "trained here"  # the origin of a model from the user-models folder
REPO_ENV, REVISION_ENV, TIMEOUT_ENV = "PERCEPTUAL_HUB_REPO", "PERCEPTUAL_HUB_REVISION", "PERCEPTUAL_HUB_TIMEOUT"
DEFAULT_REPO = "perceptual-losses/johnson2016"
DEFAULT_REVISION = "v1"  # a tag created by `hub push --tag v1`: the app never follows a moving branch
DEFAULT_TIMEOUT = 5.0
BUNDLED_DIR = Path(__file__).parent / "weights"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")
# How long a reachability check of the Hub is trusted (see `_reachable`).
_RETRY_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class HubSettings:
    """Where names resolve: a local folder, a Hub repo at a revision, huggingface_hub's cache.

    Each object remembers whether its Hub answered (for a minute), so one process can use two
    repos, and a dead Hub costs one `timeout` per settings object, not one per file.
    """

    repo: str = DEFAULT_REPO
    revision: str = DEFAULT_REVISION
    timeout: float = DEFAULT_TIMEOUT
    local_dir: Path | None = None
    user_dir: Path | None = None  # models trained here (the app's training tab)
    offline: bool = False
    endpoint: str = "https://huggingface.co"
    cache_dir: Path | None = None  # huggingface_hub's cache; None: its default under ~/.cache
    vgg_weights: Path | None = None  # a VGG safetensors file that goes before the loss network's lookup
    _reachability: dict[str, tuple[float, bool]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False)

    @classmethod
    def from_env(cls) -> HubSettings:
        """The settings the environment describes: the same object for the same values, so every
        caller that relies on the environment shares one reachability check."""
        env = os.environ.get
        hf_home = env("HF_HOME")
        settings = cls(
            repo=env(REPO_ENV) or DEFAULT_REPO,
            revision=env(REVISION_ENV) or DEFAULT_REVISION,
            timeout=float(env(TIMEOUT_ENV) or DEFAULT_TIMEOUT),
            local_dir=Path(env(LOCAL_DIR_ENV)) if env(LOCAL_DIR_ENV) else None,
            user_dir=Path(env(USER_DIR_ENV) or default_user_dir()),
            offline=env("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"),
            endpoint=(env("HF_ENDPOINT") or cls.endpoint).rstrip("/"),
            cache_dir=Path(env("HF_HUB_CACHE")) if env("HF_HUB_CACHE") else (
                Path(hf_home) / "hub" if hf_home else None),
            vgg_weights=Path(env(VGG_WEIGHTS_ENV)) if env(VGG_WEIGHTS_ENV) else None,
        )
        return _FROM_ENV.setdefault(settings, settings)


_FROM_ENV: dict[HubSettings, HubSettings] = {}


def default_user_dir() -> Path:
    """Where models trained here go unless $PERCEPTUAL_USER_MODELS says otherwise (XDG data home)."""
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "perceptual-losses" / "user-models"


@dataclass(frozen=True)
class Resolved:
    name: str
    weights: Path
    config: Path | None
    origin: str  # "local dir <path>", TRAINED_HERE, "hub <repo>@<revision>", "hub cache <repo>@<revision>", "bundled"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def _reachable(settings: HubSettings) -> bool:
    """One quick HEAD on the manifest, remembered for a minute by `settings`.

    huggingface_hub retries a failed request with back-off for ~30 s before using its cache; probing
    first keeps an offline or dead Hub down to one `timeout` for the whole app.
    """
    checked = settings._reachability.get("hub")
    if checked and time.monotonic() - checked[0] < _RETRY_AFTER_SECONDS:
        return checked[1]
    url = f"{settings.endpoint}/{settings.repo}/resolve/{settings.revision}/manifest.json"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=settings.timeout).close()
        ok = True
    except urllib.error.HTTPError:
        ok = True  # the server answered (404, 401...): reachable, huggingface_hub reports the rest
    except (OSError, ValueError):
        ok = False  # DNS failure, refused, timed out, proxy error
    settings._reachability["hub"] = (time.monotonic(), ok)
    return ok


def _fetch(filename: str, settings: HubSettings) -> tuple[Path, str] | None:
    """A file of the Hub repo, from the network or huggingface_hub's cache; None if unavailable."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    cache_only = settings.offline or not _reachable(settings)
    try:
        path = Path(hf_hub_download(
            settings.repo, filename, revision=settings.revision, cache_dir=settings.cache_dir,
            etag_timeout=settings.timeout, endpoint=settings.endpoint, local_files_only=cache_only,
        ))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError):
        return None  # not cached (offline), not in the repo (404), no such repo/revision, server error
    where = f"{settings.repo}@{settings.revision}"
    return path, (f"hub cache {where}" if cache_only else f"hub {where}")


def _hub_manifest(settings: HubSettings) -> dict | None:
    fetched = _fetch("manifest.json", settings)
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


def _from_hub(name: str, settings: HubSettings) -> Resolved | None:
    manifest = _hub_manifest(settings)
    if manifest is None:
        return None
    fetched = _fetch(f"{name}.safetensors", settings)
    if fetched is None:
        if any(f"{name}{suffix}" in manifest.get("files", {}) for suffix in PICKLE_SUFFIXES):
            raise PickleRefused(f"{name} (on the Hub only as a pickle file)")
        return None
    weights, origin = fetched
    _verify(weights, f"{name}.safetensors", manifest)
    config = None
    if f"{name}.json" in manifest.get("files", {}):
        fetched_config = _fetch(f"{name}.json", settings)
        if fetched_config is not None:
            config = fetched_config[0]
            _verify(config, f"{name}.json", manifest)
    return Resolved(name, weights, config, origin)


# --- resolution ----------------------------------------------------------------------------


NAME_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_name(name: str) -> None:
    """Model and style names (`style/udnie`, `udnie`) are joined to folders and URLs: plain parts only, so
    that a name typed into the app can never reach a file outside them (`../../etc/x`)."""
    if not all(NAME_PART.fullmatch(part) for part in name.split("/")):
        raise ConfigError(f"{name!r} is not a model or style name (letters, digits, '_', '-' and '.', "
                          "parts separated by '/').")


def resolve(name: str, settings: HubSettings) -> Resolved:
    """Find `name` in the resolution order of the module docstring (local folder, trained here, Hub, bundled)."""
    check_name(name)
    tried = []
    local = settings.local_dir
    if local:
        found = _find_in(local, name, f"local dir {local}")
        if found:
            return found
        tried.append(f"{LOCAL_DIR_ENV}={local}")
    if settings.user_dir:
        found = _find_in(settings.user_dir, name, TRAINED_HERE)
        if found:
            return found
        tried.append("the models trained here")
    found = _from_hub(name, settings)
    if found:
        return found
    tried.append(f"the Hub ({settings.repo}@{settings.revision}{', offline' if settings.offline else ''})")
    found = _find_in(BUNDLED_DIR, name, "bundled")
    if found:
        return found
    tried.append("the bundled weights")
    raise WeightsUnavailable(f"No weights named {name!r} (looked in {', '.join(tried)}).")


def style_image_file(style: str) -> str:
    """Where the painting of style network `style/<style>` lies in a Hub-layout folder."""
    return f"styles/{style}.jpg"


def resolve_style_image(style: str, settings: HubSettings) -> tuple[Path, str] | None:
    """The painting a style network was trained on, looked up in the weights' order; None if absent."""
    check_name(style)
    relative = style_image_file(style)
    local = settings.local_dir
    if local and (local / relative).is_file():
        return local / relative, f"local dir {local}"
    if settings.user_dir and (settings.user_dir / relative).is_file():
        return settings.user_dir / relative, TRAINED_HERE
    manifest = _hub_manifest(settings)
    if manifest and relative in manifest.get("files", {}):
        fetched = _fetch(relative, settings)
        if fetched is not None:
            _verify(fetched[0], relative, manifest)
            return fetched
    if (BUNDLED_DIR / relative).is_file():
        return BUNDLED_DIR / relative, "bundled"
    return None


def model_names(folder: Path = BUNDLED_DIR) -> list[str]:
    """Every `<kind>/<name>` with a `<kind>/<name>.safetensors` in a Hub-layout folder (deeper files,
    such as the training runs kept in the user-models folder, are not models)."""
    return sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.glob("*/*.safetensors"))


def available_models(settings: HubSettings) -> list[str]:
    """Names known locally, on the Hub (from its manifest) or bundled."""
    names = set(model_names(BUNDLED_DIR))
    for folder in (settings.local_dir, settings.user_dir):
        if folder and folder.is_dir():
            names |= set(model_names(folder))
    manifest = _hub_manifest(settings)
    if manifest:
        names |= {f[: -len(".safetensors")] for f in manifest.get("files", {}) if f.endswith(".safetensors")}
    return sorted(names)


def download_all(settings: HubSettings) -> list[Resolved]:
    """Prefetch every model of the Hub repo into huggingface_hub's cache (progress bars)."""
    manifest = _hub_manifest(settings)
    if manifest is None:
        raise WeightsUnavailable(f"Could not reach {settings.repo}@{settings.revision} or read its manifest.json.")
    resolved = []
    for filename in sorted(manifest.get("files", {})):
        fetched = _fetch(filename, settings)
        if fetched is None:
            raise WeightsUnavailable(f"{filename} is listed in the manifest but could not be downloaded.")
        _verify(fetched[0], filename, manifest)
        if filename.endswith(".safetensors"):
            resolved.append(_from_hub(filename[: -len(".safetensors")], settings))
    return resolved
