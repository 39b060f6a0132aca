"""A stand-in for the `spaces` package on ZeroGPU hardware, for running the app under its rules.

The real `spaces.GPU` runs each call in a forked worker that holds a GPU: arguments, results and
yielded values cross a process boundary (so they must pickle), `gr.Error` reaches the page, and any
other exception becomes a generic "ZeroGPU worker error". This module applies the same rules in
process (there is no GPU here) and appends "decorated NAME DURATION" / "call NAME" lines to the file
named by FAKE_ZEROGPU_LOG.
"""

import functools
import inspect
import os
import pickle
from types import SimpleNamespace

import gradio as gr

config = SimpleNamespace(Config=SimpleNamespace(zero_gpu=True))


def _log(line):
    with open(os.environ["FAKE_ZEROGPU_LOG"], "a") as f:
        f.write(line + "\n")


def _across(value):
    return pickle.loads(pickle.dumps(value))


def _worker_error(exc):
    if isinstance(exc, gr.Error):
        return _across(exc)
    return gr.Error(f"ZeroGPU worker error: {type(exc).__name__}")


def GPU(task, *, duration=60):
    _log(f"decorated {task.__name__} {duration}")

    if inspect.isgeneratorfunction(task):
        @functools.wraps(task)
        def generator(*args, **kwargs):
            _log(f"call {task.__name__}")
            args, kwargs = _across((args, kwargs))
            try:
                for value in task(*args, **kwargs):
                    yield _across(value)
            except Exception as exc:  # noqa: BLE001 - as ZeroGPU does
                raise _worker_error(exc) from None
        return generator

    @functools.wraps(task)
    def function(*args, **kwargs):
        _log(f"call {task.__name__}")
        args, kwargs = _across((args, kwargs))
        try:
            return _across(task(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - as ZeroGPU does
            raise _worker_error(exc) from None
    return function
