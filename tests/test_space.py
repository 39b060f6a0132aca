"""`space deploy` against the local Hub stand-in: what arrives is what a Space needs to run the app.

The command runs as a teacher would run it (a subprocess, the token from HF_TOKEN, the endpoint
from HF_ENDPOINT), with HF_HUB_DISABLE_XET=1 because the stand-in speaks LFS, not Xet.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from perceptual_models.tools import space

from bad_inputs import write_bad_inputs
from conftest import REPO
from hub_server import HubServer, Repo

SPACE_ID, TOKEN = "teacher/perceptual-demo", "hf_test_write_token"
KEY = f"spaces/{SPACE_ID}"
FAKE_ZEROGPU = Path(__file__).parent / "fake_zerogpu"
EXAMPLE = REPO / "demo" / "examples" / "astronaut.jpg"


def _deploy(server: HubServer, *args: str, **env: str) -> subprocess.CompletedProcess:
    """The CLI with no stored token or cache of the developer's (HF_HOME in the server's temporary folder)."""
    environment = {**os.environ, "HF_ENDPOINT": server.url, "HF_HUB_DISABLE_XET": "1", "HF_TOKEN": TOKEN,
                   "HF_HUB_OFFLINE": "0", "HF_HOME": str(server.folder / "hf_home"), **env}
    return subprocess.run([sys.executable, "-m", "perceptual_models", "space", "deploy", "--repo", SPACE_ID, *args],
                          check=False, capture_output=True, text=True, cwd=REPO, env=environment, timeout=300)


def _local_files(folder: Path) -> set[str]:
    return {p.relative_to(REPO).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyi"}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A first deploy, as a new private ZeroGPU Space, into a fresh stand-in Hub."""
    with HubServer(tmp_path_factory.mktemp("unused"), "unused/unused", "main") as server:
        result = _deploy(server, "--private", "--hardware", "zero-a10g")
        assert result.returncode == 0, result.stderr[-3000:]
        yield server, result


def test_deploy_creates_a_gradio_space_with_the_app_and_intact_weights(deployed):
    server, result = deployed
    assert f"{server.url}/spaces/{SPACE_ID}" in result.stdout
    repo = server.created[KEY]
    assert repo.settings["type"] == "space" and repo.settings["sdk"] == "gradio"
    assert repo.settings["visibility"] == "private" and repo.hardware == "zero-a10g"
    assert set(server.authorization) == {f"Bearer {TOKEN}"}

    files = set(repo.files)
    assert {"app.py", "requirements.txt", "README.md", "NOTICE"} <= files
    # every file below them, subfolders too (bundled weights, demo/tools, perceptual_models/tools)
    assert _local_files(REPO / "demo") | _local_files(REPO / "perceptual_models") | _local_files(REPO / "train") <= files
    assert _local_files(REPO / "docs") <= files  # the README's links resolve on the Space's page
    assert not [f for f in files if f.startswith(("tests/", "runs/", ".")) or "__pycache__" in f]
    front_matter = repo.files["README.md"].decode().split("---")[1]
    assert "sdk: gradio" in front_matter and "app_file: app.py" in front_matter

    weights = sorted((REPO / "perceptual_models" / "weights").rglob("*.safetensors"))
    assert len(weights) >= 9
    for path in weights:
        name = path.relative_to(REPO).as_posix()
        assert repo.files[name] == path.read_bytes(), name
        assert name in repo.lfs  # binary files went through the client's large-file upload, as the Hub requires


def test_the_deployed_files_run_the_app_under_zerogpu_rules(deployed, tmp_path):
    """The Space's copy alone serves the app; with a ZeroGPU-like `spaces`, the four GPU actions hold
    a GPU per call, their values cross the worker boundary, and user errors keep their message."""
    server, _ = deployed
    copy = tmp_path / "space"
    for name, data in server.created[KEY].files.items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes(data)
    from demo.tools.app_process import running_app  # the app tests' launcher; the rest of this module is library-only

    log = tmp_path / "zerogpu.log"
    env = {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(FAKE_ZEROGPU), "FAKE_ZEROGPU_LOG": str(log)}
    with running_app(tmp_path / "logs", cwd=copy, **env) as (url, _):
        client = Client(url, verbose=False)
        image, _, _ = client.predict(handle_file(str(EXAMPLE)), "starry_night", 256, api_name="/stylize")
        assert Image.open(image).size == (256, 256)
        updates = list(client.submit(handle_file(str(EXAMPLE)), "starry_night", None, 128, 10, api_name="/gatys"))
        assert "10 / 10" in updates[-1][1]
        path, expected = write_bad_inputs(tmp_path / "bad")["text_renamed"]
        with pytest.raises(AppError, match=expected):
            client.predict(handle_file(str(path)), "starry_night", 256, api_name="/stylize")
    lines = log.read_text().splitlines()
    decorated = {line.split()[1]: int(line.split()[2]) for line in lines if line.startswith("decorated")}
    assert {"on_stylize": 60, "gatys_job": 120, "upscale_job": 60, "on_reconstruct": 60}.items() <= decorated.items()
    assert lines.count("call on_stylize") == 2 and lines.count("call gatys_job") == 1


def test_redeploy_updates_the_space_and_removes_files_no_longer_shipped(tmp_path):
    with HubServer(tmp_path, "unused/unused", "main") as server:
        server.created[KEY] = Repo({"type": "space", "sdk": "gradio"}, files={
            ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
            "app.py": b"old app", "perceptual_models/old_module.py": b"gone", "notes/teacher.md": b"kept"})
        result = _deploy(server)
        assert result.returncode == 0, result.stderr[-3000:]
        files = server.created[KEY].files
        assert files["app.py"] == (REPO / "app.py").read_bytes()
        assert "perceptual_models/old_module.py" not in files
        assert files["notes/teacher.md"] == b"kept" and ".gitattributes" in files  # not ours: left alone
        assert server.created[KEY].hardware is None  # no --hardware: the Space keeps what it has


def test_without_a_token_it_says_how_to_log_in(tmp_path):
    with HubServer(tmp_path, "unused/unused", "main") as server:
        result = _deploy(server, HF_TOKEN="")
        assert result.returncode == 2 and "hf auth login" in result.stderr
        assert "Traceback" not in result.stderr and server.created == {}


def test_an_unreachable_hub_is_a_one_line_error(tmp_path):
    with HubServer(tmp_path, "unused/unused", "main") as server:
        url = server.url
    result = subprocess.run([sys.executable, "-m", "perceptual_models", "space", "deploy", "--repo", SPACE_ID],
                            check=False, capture_output=True, text=True, cwd=REPO, timeout=120,
                            env={**os.environ, "HF_ENDPOINT": url, "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "0",
                                 "HF_HOME": str(tmp_path / "hf_home")})
    assert result.returncode == 2 and "Could not deploy to the Space" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_folder_without_space_front_matter_is_refused(tmp_path):
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "README.md").write_text("# Just a readme\n")
    with pytest.raises(ValueError, match="sdk: gradio"):
        space.deploy(SPACE_ID, tmp_path, token=TOKEN)
