"""The collector's pure parts: log lines, percentiles, cgroup and /proc formats, rates, Prometheus' text."""

from __future__ import annotations

from pathlib import Path

import pytest

from nextmavens.metrics.accesslog import LOG_FORMAT, Hit, parse_line, percentile, ref_of, traffic_by_ref
from nextmavens.metrics.cgroups import CgroupReader, parse_cpu_stat
from nextmavens.metrics.dockerapi import container_from
from nextmavens.metrics.hoststats import parse_meminfo, parse_proc_stat
from nextmavens.metrics.prometheus import parse_listen, render
from nextmavens.metrics.rates import Rates

LINE = b'{"t":1796220172.107,"h":"Shop.API.test","p":"","m":"GET","u":"/rest/v1/x","s":503,"rt":0.250}'


def test_log_lines_and_their_project() -> None:
    hit = parse_line(LINE)
    assert hit == Hit(1796220172.107, "shop.api.test", "", "GET", "/rest/v1/x", 503, 0.25)
    assert ref_of(hit, "api.test") == "shop"
    assert ref_of(Hit(0, "a.b.api.test", "", "GET", "/", 200, 0), "api.test") is None
    assert ref_of(Hit(0, "crm.acme.test", "crm", "GET", "/", 200, 0), "api.test") == "crm"
    assert parse_line(b'{"t":1,"h":"x"') is None and parse_line(b"127.0.0.1 - - [..] GET /") is None
    assert '"s":$status' in LOG_FORMAT and "escape=json" in LOG_FORMAT


def test_a_minute_of_traffic() -> None:
    lines = [LINE.replace(b"503", str(s).encode()).replace(b"0.250", f"{t:.3f}".encode()) for s, t in
             [(200, 0.01), (200, 0.02), (404, 0.03), (503, 0.5), (502, 1.0)]]
    found, unmatched = traffic_by_ref([*lines, b"garbage"], "api.test")
    assert unmatched == 1
    figures = found["shop"].figures()
    assert figures == {"requests": 5.0, "http_4xx": 1.0, "http_5xx": 2.0, "p50_ms": 30.0, "p95_ms": 1000.0,
                       "p99_ms": 1000.0}
    assert found["shop"].error_paths.most_common(1) == [("/rest/v1/x", 2)]
    assert percentile([], 0.5) == 0.0 and percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0


def test_cgroup_and_proc_formats(tmp_path: Path) -> None:
    assert parse_cpu_stat("usage_usec 2500000\nuser_usec 1\n") == 2.5
    with pytest.raises(ValueError):
        parse_cpu_stat("user_usec 1\n")
    reader = CgroupReader(tmp_path)
    assert reader.usage("abc") is None
    folder = tmp_path / "docker" / "abc"
    folder.mkdir(parents=True)
    (folder / "cpu.stat").write_text("usage_usec 1000000\n")
    (folder / "memory.current").write_text("4096\n")
    usage = reader.usage("abc")
    assert usage is not None and usage.cpu_seconds == 1.0 and usage.memory_bytes == 4096
    (folder / "cpu.stat").unlink()  # the container went away
    assert reader.usage("abc") is None and "abc" not in reader.found
    assert parse_meminfo("MemTotal: 1000 kB\nMemFree: 10 kB\nMemAvailable: 250 kB\n") == (1024000, 256000)
    assert parse_proc_stat("cpu  10 0 10 70 10 0 0 0 0 0\ncpu0 1 1 1 1\n") == (20.0, 100.0)


def test_rates_skip_first_samples_and_resets() -> None:
    rates = Rates()
    assert rates.per_second("x", 10, 100) is None
    assert rates.per_second("x", 40, 110) == 3.0
    assert rates.per_second("x", 5, 120) is None  # counter reset
    assert rates.ratio("c", 1, 10) is None and rates.ratio("c", 6, 20) == 0.5


def test_engine_containers_and_prometheus_text() -> None:
    item = {"Id": "f" * 64, "Names": ["/nm-shop-rest-1"], "Labels": {"com.docker.compose.project": "nm-shop",
                                                                     "com.docker.compose.service": "rest"}}
    container = container_from(item)
    assert (container.name, container.project, container.service) == ("nm-shop-rest-1", "nm-shop", "rest")
    text = render({"acme/shop": {"cpu_pct:rest": 1.5, "requests": 3.0}, 'we"ird': {"x": 1.0}}, 1790000040)
    assert '# TYPE nextmavens_cpu_pct gauge\nnextmavens_cpu_pct{scope="acme/shop",item="rest"} 1.5\n' in text
    assert 'nextmavens_x{scope="we\\"ird"} 1.0' in text
    assert text.endswith("nextmavens_collected_at_seconds 1790000040\n")
    assert parse_listen("127.0.0.1:9187") == ("127.0.0.1", 9187) and parse_listen("[::1]:80") == ("::1", 80)
    for bad in ("0.0.0.0:9187", "10.0.0.1:80", "localhost:80", "127.0.0.1:x"):
        with pytest.raises(ValueError, match="loopback"):
            parse_listen(bad)


def test_a_cgroup_file_read_mid_change_is_no_sample(tmp_path: Path) -> None:
    folder = tmp_path / "system.slice" / "docker-abc.scope"
    folder.mkdir(parents=True)
    (folder / "cpu.stat").write_text("")
    (folder / "memory.current").write_text("10\n")
    assert CgroupReader(tmp_path).usage("abc") is None
