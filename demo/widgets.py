"""What every tab's callbacks share: how errors reach the page, and output images as files.

Errors a user can fix arrive as a warning in the page, leaving every output as it was, and as
`gr.Error` with the same plain message through `gradio_client` (`user_errors`, `in_page`).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import torch
from PIL import Image

from perceptual_models.errors import PerceptualError
from perceptual_models.image_io import to_pil

from .services import log

HERE = Path(__file__).parent
EXAMPLES = sorted((HERE / "examples").glob("*.jpg"))
OUTPUTS = Path(tempfile.gettempdir()) / "perceptual-losses-outputs"
SERVER_FAULT = "Something went wrong on the server (it is in the server log). Please try again."


def user_errors(fn: Callable) -> Callable:
    """The project's own errors (`PerceptualError`: things a user can fix) become `gr.Error` with
    their plain message and one log line; anything else is a bug: logged with its traceback, shown
    as a short generic message. Generators and functions alike."""

    def plain(exc: Exception) -> gr.Error:
        if isinstance(exc, PerceptualError):
            log.info("%s: %s", fn.__name__, exc)
            return gr.Error(str(exc), print_exception=False)
        log.exception("%s failed", fn.__name__)
        return gr.Error(SERVER_FAULT, print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001 - sorted into fixable and bugs in `plain`
                raise plain(exc) from None
        return generator

    @functools.wraps(fn)
    def function(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - sorted into fixable and bugs in `plain`
            raise plain(exc) from None
    return function


def in_page(fn: Callable) -> Callable:
    """Outermost decorator of a button's callback: in the browser, a `gr.Error` becomes a warning
    and every output keeps what it showed (an exception paints "Error" over each output and wipes
    the timing table); `gradio_client` callers still get the exception.

    It runs in the server process (above `on_gpu`). To tell the two apart it takes the request as
    a last `request: gr.Request` parameter, which Gradio fills in, and passes it on only if `fn`
    has that parameter itself.
    """
    signature = inspect.signature(fn)
    passes_request = "request" in signature.parameters

    def from_api(request: gr.Request | None) -> bool:
        return request is None or request.headers.get("x-gradio-user") == "api"

    if inspect.isgeneratorfunction(inspect.unwrap(fn)):  # unwrapped: `spaces.GPU` may hide it
        @functools.wraps(fn)
        def wrapper(*args: Any):
            try:
                yield from fn(*(args if passes_request else args[:-1]))
            except gr.Error as exc:
                if from_api(args[-1]):
                    raise
                gr.Warning(exc.message)
                yield gr.skip()
    else:
        @functools.wraps(fn)
        def wrapper(*args: Any):
            try:
                return fn(*(args if passes_request else args[:-1]))
            except gr.Error as exc:
                if from_api(args[-1]):
                    raise
                gr.Warning(exc.message)
                return gr.skip()

    if not passes_request:
        # Defaulted: it follows parameters that may have defaults (API callers may leave those out).
        request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)
        wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), request])
    wrapper.__annotations__ = {"request": gr.Request}  # what Gradio looks for (by type, not by name)
    return wrapper


def size_text(image: torch.Tensor) -> str:
    return f"{image.shape[-1]}x{image.shape[-2]}"


def as_file(image: torch.Tensor | Image.Image) -> str:
    """Write an output PNG atomically under a name made from its content, and return the path.

    Returning PIL images lets Gradio write them to its cache in place, and twenty students
    asking for the same example at once then read a file while another request rewrites it
    (truncated downloads). A rename is atomic, and Gradio copies paths into its cache safely.
    """
    pil = to_pil(image) if isinstance(image, torch.Tensor) else image
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", compress_level=1)
    data = buffer.getvalue()
    path = OUTPUTS / hashlib.sha256(data).hexdigest()[:32] / "output.png"
    if path.is_file():
        os.utime(path.parent)  # in use again: not to be pruned now
    else:
        prune_outputs()
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"output.{uuid.uuid4().hex}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)
    return str(path)


def prune_outputs() -> None:
    """Drop outputs older than an hour (Gradio has copied them into its own cache by then)."""
    now = time.time()
    for folder in OUTPUTS.glob("*") if OUTPUTS.is_dir() else []:
        try:
            if now - folder.stat().st_mtime > 3600:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


