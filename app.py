"""Start the demo: `python app.py` (also the entry point of the Hugging Face Space).

Host and port follow Gradio's GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (Spaces set 0.0.0.0);
--host/--port override them.
"""

from __future__ import annotations

import argparse
import logging
import os

import matplotlib

from demo.gpu import ZERO_GPU
from demo.services import Services
from demo.ui import PAGE_ASSETS, build_demo
from perceptual_models.runtime import configure


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=None, help="interface to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda (default: $PERCEPTUAL_DEVICE or auto)")
    args = parser.parse_args(argv)

    host = args.host or os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if os.environ.get("SPACE_ID") else None)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("perceptual_losses").setLevel(logging.INFO)  # ours only: httpx logs every request at INFO
    services = Services(args.device)
    # The process-wide set-up, once: the allocator and cuDNN for the fast path, compile limits.
    services.runtime = configure(services.device, compile=not ZERO_GPU)
    services.load_models()
    if not ZERO_GPU:  # no torch.compile there, and no GPU outside the calls that ask for one
        services.warm_up()  # before serving: the first click is then as fast as the tenth
        services.compile_in_background()
    demo = build_demo(services)
    # Gradio imports matplotlib and resolves its backend around every event: done now, the first
    # click does not pay for it (0.3-0.5 s).
    matplotlib.get_backend()
    demo.queue(max_size=64, default_concurrency_limit=2)
    demo.launch(server_name=host, server_port=args.port, show_error=True, **PAGE_ASSETS)


if __name__ == "__main__":
    main()
