"""The benchmark's tooling, run end to end at a tiny load (the benchmark itself is `make bench`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("node") is None,
        reason="Node.js is not installed: the benchmark's fake upstream needs it",
    ),
]
HAVE_WRK = shutil.which("wrk") is not None


def test_bench_measures_gateway_passthrough_and_direct_at_tiny_load(tmp_path):
    out = tmp_path / "bench.json"
    only = "a,c" if HAVE_WRK else "c"  # (a) needs wrk; without it the run says so and skips (a)
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "run.py"),
        "--duration",
        "1",
        "--warmup",
        "0",
        "--only",
        only,
        "--dialects",
        "gemini",
        "--conns-a",
        "4",
        "--streams-c",
        "6",
        "--chunks",
        "4",
        "--interval",
        "20",
        "--ramp",
        "0.1",
        "--json",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = {r["letter"]: r for r in json.loads(out.read_text())["results"]}

    streams = results["c"]
    for side in ("gateway", "passthrough", "direct"):
        run = streams[side]
        assert run["completed"] > 0 and run["failed"] == 0, run
        assert run["chunks"] == 4 * run["completed"]  # every marker of every stream arrived
        assert run["ttfb_ms"]["p99"] is not None and run["lag_ms"]["p99"] >= 0
    for side in ("gateway", "passthrough"):
        assert streams[side]["server_cpu_ms"] > 0 and streams[side]["peak_rss_mb"] > 10
    # Every stream through the gateway took a connection of the fake's: kept for the next ones.
    assert 0 < streams["gateway"]["upstream_connections"] <= streams["gateway"]["completed"]
    assert "(e/c) gemini" in proc.stdout and "pass-thru" in proc.stdout and "/direct" in proc.stdout

    if HAVE_WRK:
        unary = results["a"]
        for side in ("gateway", "passthrough", "direct"):
            assert unary[side]["requests"] > 0 and unary[side]["errors"] == 0, unary[side]
        assert unary["gateway"]["server_cpu_ms_per"] > 0 and unary["passthrough"]["server_cpu_ms_per"] > 0
        assert unary["direct"]["rps"] > unary["gateway"]["rps"]  # the fake is never the bottleneck
