"""Start the demo: `python app.py` (also the entry point of the Hugging Face Space).

Every setting the app takes from the environment is read here, once, and passed on as a value:

    GRADIO_SERVER_NAME / GRADIO_SERVER_PORT   host and port (Spaces set 0.0.0.0); --host/--port override
    PERCEPTUAL_DEVICE      auto, cpu or cuda (--device overrides)
    PERCEPTUAL_COMPILE     auto (default): torch.compile the networks on a GPU only; 1: on a CPU too (in
                           the background, eager until compiled); 0: never (--compile overrides)
    PERCEPTUAL_TRAIN_DATA  folder(s) of training photos for the "Train your own style" tab, separated by
                           the path separator (default: the example photos bundled in demo/examples)
    PERCEPTUAL_USER_MODELS where styles trained here are kept (see perceptual_models/hub.py)
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

import matplotlib

from demo.gpu import ZERO_GPU
from demo.services import Services
from demo.training import CPU_BUDGETS, GPU_BUDGETS, TrainingJobs
from demo.ui import build_demo, launch_options
from demo.widgets import HERE
from perceptual_models.hub import HubSettings
from perceptual_models.runtime import COMPILE_CHOICES, LongWork, compiles, configure
from train.data import folder_list

log = logging.getLogger("perceptual_losses.app")
# Long jobs that run at once: the optimization's slot (demo/style_tab.py) and super-resolution's two
# (demo/sr_tab.py); each step of theirs takes one long-work thread.
LONG_JOBS = 3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=None, help="interface to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda (default: $PERCEPTUAL_DEVICE or auto)")
    parser.add_argument("--compile", default=None, choices=COMPILE_CHOICES,
                        help="torch.compile the networks: auto (on a GPU only), 1 or 0 (default: $PERCEPTUAL_COMPILE or auto)")
    args = parser.parse_args(argv)

    env = os.environ.get
    host = args.host or env("GRADIO_SERVER_NAME") or ("0.0.0.0" if env("SPACE_ID") else None)
    train_data = folder_list(env("PERCEPTUAL_TRAIN_DATA", "")) or [HERE / "examples"]
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("perceptual_losses").setLevel(logging.INFO)  # ours only: httpx logs every request at INFO

    settings = HubSettings.from_env()  # where every model, painting and the loss network is looked up
    services = Services(args.device or env("PERCEPTUAL_DEVICE", "auto"), settings)
    # The process-wide set-up, once: the allocator and cuDNN for the fast path.
    services.runtime = configure(services.device)
    if services.device.type == "cpu" and not ZERO_GPU:  # short requests first, where they share the cores
        services.long_work = LongWork(workers=LONG_JOBS)
    # No torch.compile on ZeroGPU: the GPU exists only inside the calls that ask for one.
    compile_networks = compiles(args.compile or env("PERCEPTUAL_COMPILE", "auto"), services.device) and not ZERO_GPU
    log.info("networks: %s", "compiled in the background, eager until then" if compile_networks else "eager")
    services.load_models()
    if not ZERO_GPU:  # no GPU outside the calls that ask for one
        services.warm_up()
    # In the background, each network switching to its graph once compiled, the eager fast path serving
    # until then: compiling before serving kept the page away for 393 s on a fresh 2-core machine.
    if compile_networks:
        threading.Thread(target=services.compile_models, name="compile", daemon=True).start()

    jobs = None
    if not ZERO_GPU:  # a training job needs a device for minutes, which ZeroGPU does not lend

        def on_model(name: str) -> None:  # a style trained here; the page serves it at once, eager until compiled
            if services.load_model(name) and compile_networks:
                threading.Thread(target=services.compile_models, args=([name],), daemon=True).start()

        budgets = GPU_BUDGETS if services.device.type == "cuda" else CPU_BUDGETS
        jobs = TrainingJobs(settings.user_dir, train_data, budgets, services.device.type, on_model)

        def shut_down(*_) -> None:  # a running job saves its network first (exported at the next start)
            jobs.close()
            os._exit(0)  # as SIGTERM's default would; sys.exit aborts in torch's threads at teardown

        signal.signal(signal.SIGTERM, shut_down)
    demo = build_demo(services, jobs)
    # Gradio imports matplotlib and resolves its backend around every event: done now, the first
    # click does not pay for it (0.3-0.5 s).
    matplotlib.get_backend()
    demo.queue(max_size=64, default_concurrency_limit=2)
    demo.launch(server_name=host, server_port=args.port, show_error=True, **launch_options(jobs))


if __name__ == "__main__":
    main()
