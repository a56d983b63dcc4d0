"""The URLs production serves: the webhook benchmark's trivial view is the bench's own."""

import pytest
from django.urls import Resolver404, resolve


def test_production_serves_no_benchmark_view():
    with pytest.raises(Resolver404):
        resolve("/api/telephony/ping/")


def test_the_bench_serves_its_trivial_view_beside_every_url_of_rapports():
    assert resolve("/api/telephony/ping/", urlconf="bench.urls").url_name == "bench-ping"
    assert resolve("/api/telephony/events/", urlconf="bench.urls").url_name == "telephony-events"
