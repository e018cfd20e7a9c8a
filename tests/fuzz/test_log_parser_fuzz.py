"""Property tests for the log reader: whatever a line holds, parsing either gives a line or a
``ParseError``, and scanning never stops early or raises.

Seeded (``derandomize``), so a run is repeatable; run with ``pytest tests/fuzz``.
"""

from __future__ import annotations

import json

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from doctor.logscan import patterns_from  # noqa: E402
from doctor.logscan.engines import make_engine  # noqa: E402
from doctor.logscan.parse import Line, ParseError, parse_line  # noqa: E402
from doctor.logscan.scan import Scanner  # noqa: E402
from doctor.logscan.sources import StdinSource, as_stream  # noqa: E402

SETTINGS = settings(derandomize=True, max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

PATTERNS = patterns_from()
ENGINE = make_engine([p.regex for p in PATTERNS])

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-10**30, max_value=10**30),
                    st.sampled_from(["1e20", "NaN", "-1", "1724871566.5", "", "null"]))


@st.composite
def json_lines(draw) -> str:
    """Journal, zap, jsonlog and Patroni JSON lines with odd values, some nested deep."""
    shape = draw(st.sampled_from(["zap", "journal", "jsonlog", "patroni", "deep"]))
    msg = draw(st.text(max_size=80))
    if shape == "deep":
        depth = draw(st.integers(min_value=1, max_value=5000))
        return '{"msg": ' + "[" * depth + "1" + "]" * depth + ', "ts": 1}'
    ts = draw(numbers)
    doc: dict = {
        "zap": {"level": "warn", "ts": ts, "msg": msg},
        "journal": {"MESSAGE": msg, "__REALTIME_TIMESTAMP": ts, "SYSLOG_IDENTIFIER": "patroni"},
        "jsonlog": {"error_severity": "FATAL", "message": msg, "timestamp": str(ts)},
        "patroni": {"message": msg, "levelname": "INFO", "asctime": str(ts)},
    }[shape]
    return json.dumps(doc, allow_nan=True)


prefixes = st.sampled_from(["", "2026-11-26 06:24:07,967 INFO: ", "2026-11-26 06:40:01.100 UTC [812] FATAL:  ",
                            "Nov 26 06:24:07 host patroni[12]: ", "1724871566.123 [81] LOG:  ",
                            "2026-11-26T06:24:07+00:00 host postgres[1]: ", "raft2026/11/26 06:24:07 INFO: ",
                            "9999-12-31 23:59:59 UTC [1] LOG:  ", "0001-01-01 00:00:00 +14:00 [1] LOG:  "])
lines = st.one_of(json_lines(), st.builds(lambda p, t: p + t, prefixes, st.text(max_size=120)))


@SETTINGS
@given(lines)
def test_a_line_parses_or_says_why(text):
    try:
        line = parse_line(text)
    except ParseError as exc:
        assert str(exc)
        return
    assert isinstance(line, Line)
    if line.ts is not None:
        assert line.ts == line.ts  # never NaN


@SETTINGS
@given(st.lists(st.one_of(lines, st.binary(max_size=200).map(lambda b: b.decode("latin-1"))), max_size=40))
def test_scanning_never_stops_early(batch):
    data = "\n".join(batch).encode("utf-8", "surrogateescape") + b"\n"
    scanner = Scanner(PATTERNS, engine=ENGINE).scan([StdinSource(as_stream(data))])
    src = scanner.sources[0]
    assert src["read"] and src["complete"] and not src.get("errors")
    assert src["lines"] == data.count(b"\n")
    assert src.get("unparsed_lines", 0) <= src["lines"]
    scanner.facts()  # results build whatever was read
