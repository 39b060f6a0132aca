"""Everything a lent GPU is for, in one device call: `python -m demo.tools.gpu_session --out "$OUT"`.

A GPU is lent to a session by chance, for 15 minutes in all and at most 10 minutes a call, so this is the
one prepared command to run first when one is (issues 30 and 32):

1. the app's own service layer on the GPU (`demo.tools.service_check`: stylisation at 256/512/1024,
   Gatys 100 iterations, super-resolution x4/x8 with metrics, reconstruction, live frames), capped at
   `--service-seconds`: `$OUT/gpu_service_check.json`, which the Gallery shows once copied to demo/gallery/;
2. the style networks at the paper's 256 px crops, going on from the bundle (`train.gpu_styles`), in the
   time left of `--seconds`, less ~20 s a style for start-up and export: `$OUT/style_<name>.tar` and
   `summary.json`.

Each runs in its own process, so a failure of the first still leaves the second its time. The log is
`$OUT/gpu_session.log`: with the tars that is 8 files, what the device tool returns at most.

    # here: copy the shared data folder's gpu_bundle/train and gpu_bundle/styles into .gpu/ (ignored by git;
    # the VGG copy is in the repository; docs/training-notes.md, "The GPU job", has the command)
    # device tool: command "python3 -m demo.tools.gpu_session --out $OUT", carry [".gpu"], timeout_s 600
    # back here (FILES: where the device tool put them):
    cp FILES/gpu_service_check.json demo/gallery/
    python -m train.gpu_styles --unpack FILES/style_*.tar --to perceptual_models/weights
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

JOB_OVERHEAD_SECONDS = 120  # train.gpu_styles' start-ups and exports, ~20 s a style, on top of its --minutes


def run_step(name: str, command: list[str], seconds: float, log) -> None:
    """Run one step in its own process for at most `seconds`; its output goes to the log as it comes."""
    print(f"== {name}: {shlex.join(command)} (at most {seconds:.0f} s)", file=log, flush=True)
    try:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=seconds, check=False).returncode
        outcome = "done" if code == 0 else f"failed (exit {code})"
    except subprocess.TimeoutExpired:
        outcome = "failed (timed out)"
    print(f"== {name}: {outcome}", file=log, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m demo.tools.gpu_session", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="$OUT on the device: what comes back")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seconds", type=float, default=540, help="the whole session (a device call: 600 at most)")
    parser.add_argument("--service-seconds", type=float, default=150, help="at most this for the service check")
    parser.add_argument("--service-args", default="", help="more `demo.tools.service_check` options, one string")
    parser.add_argument("--train-args", default="", help="more `train.gpu_styles` options, one string")
    args = parser.parse_args(argv)

    start = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "gpu_session.log").open("w") as log:
        gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
        print(f"torch {torch.__version__}, {gpu}", file=log, flush=True)
        run_step("service check", [sys.executable, "-m", "demo.tools.service_check", "--device", args.device,
                                   "--out", str(args.out / "gpu_service_check.json"),
                                   *shlex.split(args.service_args)], args.service_seconds, log)
        left = args.seconds - (time.monotonic() - start)  # the job may run to the session's end, no further
        minutes = max(left - JOB_OVERHEAD_SECONDS, 0) / 60
        run_step("style networks", [sys.executable, "-m", "train.gpu_styles", "--device", args.device,
                                    "--out", str(args.out), "--minutes", f"{minutes:.2f}",
                                    *shlex.split(args.train_args)], left, log)
    print((args.out / "gpu_session.log").read_text())


if __name__ == "__main__":
    main()
