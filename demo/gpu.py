"""ZeroGPU support: `on_gpu` asks a ZeroGPU Space for a GPU around a call, and changes nothing elsewhere.

Hugging Face installs the `spaces` package on Gradio Spaces (it is not in requirements.txt). On
ZeroGPU hardware, `spaces.GPU` runs each call in a worker process that holds a GPU for the call;
without the package, or on any other hardware, it returns the function unchanged. `spaces` must be
imported before CUDA is first touched, which importing this module (as app.py does) ensures.
"""

from __future__ import annotations

from collections.abc import Callable

try:
    import spaces
except ImportError:
    spaces = None

# On ZeroGPU the GPU exists only inside `on_gpu` calls, and torch.compile is not supported.
ZERO_GPU = spaces is not None and spaces.config.Config.zero_gpu


def on_gpu(duration: int = 60) -> Callable[[Callable], Callable]:
    """Decorator: on ZeroGPU, hold a GPU for the call, for at most `duration` seconds.

    Put it outermost (above `user_errors`): ZeroGPU passes `gr.Error` from the worker to the page
    and replaces any other exception by a generic "ZeroGPU worker error". Wrap a tab's handler as a
    bound method (`on_gpu()(handlers.method)`), not in its class body: a call's arguments are pickled
    to the worker, and `self` (the models, their locks) must not be one of them.
    """
    def wrap(fn: Callable) -> Callable:
        return spaces.GPU(fn, duration=duration) if spaces is not None else fn
    return wrap
