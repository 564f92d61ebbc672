"""tests/bench's series and charts (no root): what a bench records, and the PNGs drawn from it."""

from __future__ import annotations

import json

from tests.bench import plots, series


def test_point_is_a_no_op_without_the_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(series.SERIES_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    series.point("x", "s", 1, 2.0, x_label="a", y_label="b")
    assert list(tmp_path.iterdir()) == []


def test_points_gather_sorted_and_replace_the_same_x(tmp_path, monkeypatch):
    monkeypatch.setenv(series.SERIES_ENV, str(tmp_path))
    for x, y in ((200, 2.0), (50, 1.0), (200, 3.0)):
        series.point("proxy_iptables", "iptables full sync", x, y, x_label="services",
                     y_label="ms")
    doc = json.loads((tmp_path / "proxy_iptables.json").read_text())
    s = doc["series"]["iptables full sync"]
    assert s["points"] == [[50, 1.0], [200, 3.0]] and s["x_label"] == "services"
    assert doc["machine"]["cpus"] >= 1


def test_sizes_from_the_environment(monkeypatch):
    monkeypatch.delenv(series.SIZES_ENV, raising=False)
    assert series.sizes((50,)) == (50,)
    monkeypatch.setenv(series.SIZES_ENV, "10, 20,40")
    assert series.sizes((50,)) == (10, 20, 40)


def test_draw_writes_one_png_per_chart(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv(series.SERIES_ENV, str(data))
    for n in (10, 20):
        series.point("cluster", "pods end to end", n, n * 1.5, x_label="pods created",
                     y_label="per second")
        series.point("proxy_iptables", "iptables full sync", n * 10, n * 2.0,
                     x_label="services", y_label="ms")
        series.point("proxy_nftables", "nftables full sync", n * 10, n * 1.0,
                     x_label="services", y_label="ms")
    for name, qps in (("netsim", 9000.0), ("dnslib", 1500.0)):
        series.point("dns", "qps", name, qps, x_label="server", y_label="qps", kind="bar")
    written = plots.draw(str(data), str(tmp_path))
    assert sorted(p.rsplit("/", 1)[1] for p in written) == ["cluster.png", "dns.png",
                                                            "proxy_sync.png"]
    for p in written:
        with open(p, "rb") as f:
            head = f.read()
        assert head.startswith(b"\x89PNG") and len(head) > 5000
