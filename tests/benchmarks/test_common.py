"""What every benchmark shares (benchmarks/common.py): progress lines during one long call, valid JSON."""
from __future__ import annotations

import json
import math
import time

from benchmarks import common


def test_heartbeat_prints_elapsed_and_an_estimated_eta_then_says_when_the_estimate_is_passed(monkeypatch, capsys):
    monkeypatch.setattr(common, "PROGRESS_EVERY_S", 0.05)
    with common.heartbeat("banded (1/2)", expected_s=0.12):
        time.sleep(0.3)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 3
    assert all("banded (1/2): " in line and "elapsed" in line for line in lines)
    assert "ETA ~" in lines[0] and "(estimated)" in lines[0]
    assert "over the estimate" in lines[-1]


def test_heartbeat_is_silent_for_a_short_call_and_stops_with_it(monkeypatch, capsys):
    monkeypatch.setattr(common, "PROGRESS_EVERY_S", 0.2)
    with common.heartbeat("whole", expected_s=1.0):
        pass
    time.sleep(0.3)
    assert capsys.readouterr().err == ""


def test_rounded_keeps_json_valid():
    result = common.rounded({"rate": math.nan, "peak": math.inf, "ms": [72.41234, 1 / 3]})
    assert result == {"rate": None, "peak": None, "ms": [72.41, 0.3333]}
    json.dumps(result, allow_nan=False)
