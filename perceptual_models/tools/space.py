"""Run the app as your own Hugging Face Space: `python -m perceptual_models space deploy --repo USER/NAME`.

The Space runs app.py from a copy of this project with the bundled weights; README.md's front
matter (sdk, sdk_version, python_version, app_file) is the Space's configuration.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, RemoteError
from .publish import upload

PROJECT = Path(__file__).resolve().parents[2]
# What app.py needs on a Space: the app, the library with its bundled weights, the trainer (the
# "Train your own style" tab runs `python -m train style`), and the licences.
# docs/: the README's links (results, training notes, deployment) resolve on the Space's page too.
# A `*` matches across `/` (huggingface_hub's fnmatch), so subfolders go too: the weights, and the
# tools (demo/tools, perceptual_models/tools), which the app does not need but costs nothing to ship.
SPACE_FILES = ["app.py", "requirements.txt", "README.md", "NOTICE", "demo/*", "perceptual_models/*", "train/*", "docs/*"]
NOT_SHIPPED = ["*__pycache__*", "*.pyc", "*.pyi", ".*", "*/.*"]


def check_space_folder(folder: Path) -> dict:
    """The front matter of `folder`/README.md, if it describes a Gradio Space whose app file is there."""
    from huggingface_hub import metadata_load

    readme = folder / "README.md"
    if not readme.is_file():
        raise ConfigError(f"{folder} has no README.md; deploy the project's folder (the one with app.py).")
    metadata = metadata_load(readme) or {}
    if metadata.get("sdk") != "gradio":
        raise ConfigError(f"{readme} does not start with Space front matter saying `sdk: gradio`.")
    app_file = metadata.get("app_file", "app.py")
    if not (folder / app_file).is_file():
        raise ConfigError(f"The front matter's app_file {app_file!r} is not in {folder}.")
    return metadata


def deploy(repo_id: str, folder: Path = PROJECT, *, private: bool = False, hardware: str | None = None,
           token: str | None = None) -> str:
    """Create the Space unless it exists, upload the app (files we no longer ship are deleted there),
    optionally request hardware; returns the Space's URL."""
    from httpx2 import HTTPError  # huggingface_hub's HTTP library: connection errors and HfHubHTTPError
    from huggingface_hub import get_token

    check_space_folder(folder)
    if token is None and get_token() is None:
        raise ConfigError("No Hugging Face token: run `hf auth login` (a token with write access), "
                         "set HF_TOKEN, or pass --token.")
    try:
        api, _ = upload(folder, repo_id, "Deploy the perceptual-losses app", repo_type="space", space_sdk="gradio",
                        token=token, private=private, allow_patterns=SPACE_FILES, ignore_patterns=NOT_SHIPPED,
                        delete_patterns=SPACE_FILES)
    except (HTTPError, OSError) as exc:
        raise RemoteError(f"Could not deploy to the Space {repo_id}: {exc}") from exc
    url = f"{api.endpoint}/spaces/{repo_id}"
    if hardware:
        try:
            api.request_space_hardware(repo_id, hardware)
        except (HTTPError, OSError) as exc:
            raise RemoteError(f"The app is uploaded to {url}, but the hardware request ({hardware}) "
                               f"was refused: {exc}") from exc
    return url
