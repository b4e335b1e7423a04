"""wrk's Lua script and the parsing of its summary line (wrk itself is not run here)."""

from __future__ import annotations

import pytest

from summit.bench import wrk


def test_script_sets_the_request() -> None:
    text = wrk.script("POST", {"Authorization": "Bearer a\"b"}, '{"body":"x"}')
    assert 'wrk.method = "POST"' in text
    assert 'wrk.headers["Authorization"] = "Bearer a\\"b"' in text
    assert 'wrk.body = "{\\"body\\":\\"x\\"}"' in text
    assert "done = function(summary, latency, requests)" in text


def test_parse_summary_line() -> None:
    out = (
        "Running 5s test @ http://127.0.0.1:1/\n"
        'WRKJSON {"requests":1000,"duration_us":2000000,"bytes":1,"connect_errors":0,"read_errors":1,"write_errors":0,'
        '"status_errors":4,"timeout_errors":0,"p50_us":1500,"p90_us":3000,"p99_us":9000,"mean_us":1700.0,"max_us":12000}\n'
    )
    result = wrk.parse(out)
    assert result.requests == 1000 and result.seconds == 2.0 and result.errors == 5
    assert result.rps == 500 and result.good_rps == pytest.approx(497.5)
    assert (result.p50_ms, result.p90_ms, result.p99_ms) == (1.5, 3.0, 9.0)


def test_parse_without_summary_fails_clearly() -> None:
    with pytest.raises(ValueError, match="no summary line"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused")
