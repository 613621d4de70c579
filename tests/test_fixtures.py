"""The example sites and edge-case objects in fixtures/ do what their comments say."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from simdaemon import Daemon, config
from tests import objects, scu
from tests.conftest import CLIENT
from tests.receiver import Receiver

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def site(factory: Callable[..., Daemon], name: str, folder: Path) -> Daemon:
    """Start the daemon of ``fixtures/<name>.toml`` on an ephemeral port."""
    options: dict[str, Any] = config.read(FIXTURES / f"{name}.toml")
    fields = options.pop("daemon")
    fields.update(port=0, archive=str(folder / "archive"))
    return factory(folder=folder, **fields, **options)


@pytest.mark.parametrize("name", ["site-dialog", "site-strict"])
def test_the_example_sites_load(name: str) -> None:
    loaded = config.load(FIXTURES / f"{name}.toml")
    assert [e.ae_title for e in loaded.trusted] == ["MyClient"]


def test_the_dialog_site_matches_on_id_and_names_and_stamps_new_patients(
    simdaemon_factory: Callable[..., Daemon], tmp_path: Path
) -> None:
    daemon = site(simdaemon_factory, "site-dialog", tmp_path)
    assert daemon.ae_title == "MyDaemon"
    latin1 = FIXTURES / "objects" / "latin1-name-without-charset.dcm"
    (answer,) = scu.store(daemon, [latin1], calling="MyClient")
    assert scu.status_of(answer) == (0, "")
    (patient,) = daemon.archive.patients()
    assert patient.name == "Müller^Jürgen"  # the entity's import_charset is ISO_IR 100
    assert (patient.hospital, patient.department) == ("UAB", "Radiation Oncology")


def test_the_strict_site_refuses_unknown_patients(
    simdaemon_factory: Callable[..., Daemon], tmp_path: Path
) -> None:
    daemon = site(simdaemon_factory, "site-strict", tmp_path)
    (answer,) = scu.store(daemon, [objects.ct()], calling="MyClient")
    assert scu.status_of(answer) == (0xC001, "no matching patient; automatic creation is off")
    assert list((tmp_path / "failed").glob("*.reason.txt"))


def test_a_varian_private_object_is_accepted_and_filed(daemon: Daemon) -> None:
    private = FIXTURES / "objects" / "varian-private-sop-class.dcm"
    (answer,) = scu.store(daemon, [private])
    assert scu.status_of(answer) == (0, "")
    uid = dcmread(private).SOPInstanceUID
    row = daemon.archive.instance(uid)
    assert row is not None
    assert row.sop_class_uid == "1.2.246.352.70.1.70"


def test_a_varian_private_object_can_be_moved(make_daemon: Callable[..., Daemon]) -> None:
    receiver = Receiver().start()
    try:
        daemon = make_daemon(trusted=[CLIENT, receiver.entity()])
        private = FIXTURES / "objects" / "varian-private-sop-class.dcm"
        scu.store(daemon, [private])
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.SOPInstanceUID = dcmread(private).SOPInstanceUID
        _, final, _ = scu.move(daemon, query, "DEST")
    finally:
        receiver.stop()
    assert final.Status == 0
    assert receiver.uids() == [str(query.SOPInstanceUID)]
