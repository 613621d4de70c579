"""The Network Interface drop-down: the machine's adapters as "NAME (IP)", as the dialog has."""

from __future__ import annotations

import re
import sys

import pytest

from simdaemon.console.adapters import ALL_ADAPTERS, Adapter, adapters, choices
from simdaemon.pytest_plugin import TestDaemon
from tests.http import call


def test_adapters_start_with_loopback() -> None:
    found = adapters()
    assert found, "every machine has a loopback adapter"
    assert found[0].ip.startswith("127.")
    if sys.platform.startswith("linux"):
        assert Adapter("lo", "127.0.0.1") in found


def test_choices_offer_all_adapters_and_keep_an_address_no_adapter_has() -> None:
    found = [Adapter("lo", "127.0.0.1"), Adapter("eth0", "10.22.86.64")]
    assert choices("10.22.86.64", found) == [*found, ALL_ADAPTERS]
    assert choices("0.0.0.0", found) == [*found, ALL_ADAPTERS]
    kept = choices("127.0.0.2", found)
    assert kept[-1] == Adapter("configured", "127.0.0.2")
    assert kept[-1].label() == "configured (127.0.0.2)"


@pytest.mark.simdaemon(console=True)
def test_the_configuration_page_offers_the_adapters_with_the_host_selected(
    simdaemon: TestDaemon,
) -> None:
    assert simdaemon.console is not None
    page = call(simdaemon.console.url, "GET", "/config").body.decode()
    select = re.search(r'<select name="daemon.host"[^>]*>(.*?)</select>', page, re.S)
    assert select is not None, "Network Interface is a drop-down"
    options = re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>', select[1])
    assert [value for value, chosen, _ in options if chosen] == [simdaemon.host]
    labels = {value: label for value, _, label in options}
    for adapter in adapters():
        assert labels[adapter.ip] == adapter.label()
    assert labels["0.0.0.0"] == "All adapters (0.0.0.0)"
