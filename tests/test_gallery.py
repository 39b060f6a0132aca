"""The Gallery tab's tables, rendered from the benchmarks' JSON (a demo test: the library's tests
do not import `demo`)."""

import json

from demo.tools.build_gallery import table1_markdown


def test_gallery_table1_reports_both_eager_baselines(tmp_path):
    variants = {"eager_fp32": 0.3, "eager_fp32_plain_process": 0.5, "compiled_fast": 0.1}
    row = {"size": 512, "gatys_s": {"100": 98.0, "500": 490.0}, "feedforward_s": 0.1, "feedforward_path": "compiled_fast",
           "feedforward_variants": variants, "fast_vs_eager_fp32": 3.0, "fast_vs_eager_fp32_plain_process": 5.0,
           "psnr_vs_eager_fp32": {"compiled_fast": 53.6},
           "speedup": {"100": 980.0, "500": 4900.0}, "extrapolated": True}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"device": "CPU (test)", "versions": {"torch": "x"}, "rows": [row]}))
    markdown = table1_markdown(path)
    assert "| 512 | paper | 10.97 | 54.85 | 0.050 | 1097x |" in markdown
    assert "| 512 | ours | 98.0* | 490.0* | 0.100 | 4900x |" in markdown
    assert "0.500 s in a fresh process (5.00x), 0.300 s in the same process (3.00x); outputs 54 dB PSNR apart" in markdown


def test_gallery_table1_keeps_gpu_times_readable(tmp_path):
    """Milliseconds keep their digits, an eager-fp32 winner is said plainly, and the JSON's note is shown."""
    variants = {"eager_fp32": 0.0022, "eager_fast": 0.0038, "compiled_fast": 0.003}
    row = {"size": 256, "gatys_s": {"100": 1.0, "500": 5.1}, "feedforward_s": 0.0022, "feedforward_path": "eager_fp32",
           "feedforward_variants": variants, "fast_vs_eager_fp32": 1.0, "psnr_vs_eager_fp32": {},
           "speedup": {"100": 455.0, "500": 2318.0}, "extrapolated": True}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"device": "GPU (test)", "versions": {"torch": "x"}, "rows": [row], "note": "Warmed up."}))
    markdown = table1_markdown(path)
    assert "| 256 | ours | 1.0* | 5.1* | 0.0022 | 2318x |" in markdown
    assert "256 px: plain eager fp32 is the fastest here, 0.0022 s (eager fast 0.0038 s, compiled fast 0.0030 s)." in markdown
    assert markdown.endswith("Warmed up.")
