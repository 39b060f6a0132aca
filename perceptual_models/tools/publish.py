"""Build and publish a Hub-layout weights folder: repo card, manifest, the loss network, upload.

Each model's own files (fp16 weights, config, model card) are written by perceptual_models/cards.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..cards import PAPER
from ..errors import ConfigError, RemoteError
from ..hub import sha256
from ..vgg import check_layers, layer_names, loss_network_name, read_vgg_file

VGG_CREDIT = ("VGG-16 ImageNet weights by Karen Simonyan and Andrew Zisserman, \"Very Deep Convolutional "
              "Networks for Large-Scale Image Recognition\" (ICLR 2015, arXiv 1409.1556), licensed CC BY 4.0; "
              "truncated and converted to fp16 safetensors by this project.")


def export_loss_network(source: Path, folder: Path, through: str = "relu4_3", arch: str = "vgg16") -> Path:
    """The app's embedded loss network: `source`'s convolutions up to `through`, fp16, with config and card.

    relu4_3 is the deepest layer any of the paper's losses reads, so the file is ~15 MB instead of 59 MB
    and the app works offline. The weight format (caffe or torchvision) is kept, so is the key layout.
    """
    state_dict, weight_format, file_arch = read_vgg_file(source)
    if file_arch != arch:
        raise ConfigError(f"{source} holds {file_arch} weights, not {arch}.")
    if weight_format != "caffe":  # the app looks up (and the paper used) the Caffe VGG
        raise ConfigError(f"{source} holds {weight_format} weights; export the Caffe VGG (BGR, 0-255, mean-subtracted).")
    check_layers([through], arch)
    depth = layer_names(arch).index(through) + 1  # modules features.0 .. features.(depth - 1)
    kept = {k: v.to(torch.float16).contiguous() for k, v in state_dict.items()
            if k.startswith("features.") and int(k.split(".")[1]) < depth}
    name = loss_network_name(arch)
    path = folder / f"{name}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(kept, str(path), metadata={"format": weight_format, "arch": arch, "through": through})
    config = {"architecture": arch, "format": weight_format, "through": through, "dtype": "float16",
              "conv_layers": len(kept) // 2, "license": "CC BY 4.0", "credit": VGG_CREDIT}
    path.with_suffix(".json").write_text(json.dumps(config, indent=2) + "\n")
    convention = "caffe (BGR, 0-255, minus the ImageNet mean)" if weight_format == "caffe" else "torchvision"
    path.with_suffix(".md").write_text("\n".join([
        f"# {name}", "",
        (f"The loss network of the paper's perceptual losses: ImageNet {arch.upper()} through {through} "
        f"({config['conv_layers']} convolutions), {convention} input convention, fp16."), "",
        f"- **Credit and licence**: {VGG_CREDIT}",
        ("- **Used for**: Gatys et al.'s optimisation, training the style and l_feat networks, and the "
        "feature/style reconstructions of the paper's Figure 3. Not needed to run the trained networks."), "",
    ]))
    return path


def repo_card(folder: Path) -> str:
    """README.md for the Hub repo: YAML metadata (licence, tags, datasets, paper) and a model table."""
    rows = []
    for config_path in sorted(folder.rglob("*.json")):
        name = config_path.relative_to(folder).with_suffix("").as_posix()
        if name == "manifest" or not (config_path.with_suffix(".safetensors")).is_file():
            continue
        config = json.loads(config_path.read_text())
        summary = ", ".join(f"{k}: {v}" for k, v in config.get("evaluation", {}).items()) or "-"
        rows.append(f"| `{name}` | {config['architecture']} | {config.get('training', {}).get('iterations')} | {summary} |")
    return "\n".join([
        "---",
        "license: mit",
        "library_name: pytorch",
        "pipeline_tag: image-to-image",
        "tags:", "- style-transfer", "- super-resolution", "- perceptual-loss", "- safetensors",
        "datasets:", "- sun397", "- urban100",
        "arxiv: '1603.08155'",
        "---",
        "",
        "# Perceptual losses for real-time style transfer and super-resolution: trained weights",
        "",
        ("Weights for the perceptual-losses teaching demo, a reproduction of "
         f"Johnson, Alahi & Fei-Fei (ECCV 2016, [{PAPER}]({PAPER})). All weights are fp16 safetensors; "
         "each has a JSON config (architecture, training settings, data, losses) and a Markdown card. "
         "`manifest.json` lists the sha256 of every file; the loader checks it."),
        "",
        "| model | architecture | iterations | evaluation |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
        "Style images in `styles/` are public-domain works, resized.",
        "",
    ])


def write_manifest(folder: Path) -> dict:
    """manifest.json: sha256 and size of every file in the folder (except itself)."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative == "manifest.json" or relative.startswith("."):
            continue
        files[relative] = {"sha256": sha256(path), "size": path.stat().st_size}
    manifest = {"format": 1, "files": files}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def prepare_repo(folder: Path) -> dict:
    """Write README.md (model card) and then manifest.json, so the manifest covers the card."""
    (folder / "README.md").write_text(repo_card(folder))
    return write_manifest(folder)


def upload(folder: Path, repo_id: str, message: str, *, repo_type: str = "model", token: str | None = None,
           private: bool = False, space_sdk: str | None = None, **patterns: list[str]):
    """Create the repo unless it exists and upload the folder in one commit; returns (HfApi, CommitInfo).

    `token` None means huggingface_hub's own discovery (HF_TOKEN, then `hf auth login`). Binary and
    large files go through the client's LFS/Xet upload. `patterns`: upload_folder's allow_patterns,
    ignore_patterns and delete_patterns.
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type=repo_type, space_sdk=space_sdk, exist_ok=True, private=private)
    commit = api.upload_folder(repo_id=repo_id, repo_type=repo_type, folder_path=str(folder), commit_message=message,
                               **patterns)
    return api, commit


def push(folder: Path, repo_id: str, tag: str | None = None, private: bool = False) -> str:
    """Upload the folder as a model repo (token from `hf auth login` or HF_TOKEN); tag the commit."""
    from httpx2 import HTTPError  # huggingface_hub's HTTP library: connection errors and HfHubHTTPError

    prepare_repo(folder)
    try:
        api, commit = upload(folder, repo_id, "Update weights", private=private)
        if tag:
            api.create_tag(repo_id, tag=tag, revision=commit.oid, exist_ok=True)
    except (HTTPError, OSError) as exc:
        raise RemoteError(f"Could not push {folder} to {repo_id}: {exc}") from exc
    return commit.commit_url
