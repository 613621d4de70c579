"""Configuration: defaults, the example round trip, and an error for every kind of bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from simdaemon import Daemon, config
from simdaemon.config import Config, ConfigError, TrustedEntity
from simdaemon.investigation import Investigator, resolve


def test_an_empty_file_is_the_embedded_default(tmp_path: Path) -> None:
    loaded = config.loads("", tmp_path)
    assert loaded.daemon.ae_title == "VMSDBD"
    assert loaded.daemon.host == "127.0.0.1"
    assert loaded.daemon.port == 51402
    assert loaded.daemon.max_associations == 10
    assert loaded.daemon.archive == tmp_path / "archive"
    assert loaded.patient_matching.patient_id
    assert loaded.patient_matching.last_name
    assert loaded.patient_matching.first_name
    assert not loaded.patient_matching.patient_id2
    assert not loaded.patient_matching.birth_date
    assert loaded.patient_creation.automatic
    assert loaded.investigation.failed_import_folder == tmp_path / "failed"
    assert loaded.trusted == ()


def test_the_example_loads_back_unchanged(tmp_path: Path) -> None:
    first = config.loads(config.example(), tmp_path)
    assert first.entity("MYCLIENT") == TrustedEntity("MYCLIENT", "10.130.10.133", 9999)
    assert config.loads(config.render(first), tmp_path) == first
    assert config.render(first) == config.render(config.loads(config.render(first), tmp_path))


def test_every_field_survives_render_and_load(tmp_path: Path) -> None:
    text = """
    [daemon]
    ae_title = "MyDaemon"
    host = "0.0.0.0"
    port = 0
    archive = "/srv/aria"
    max_associations = 3
    [patient_matching]
    patient_id = false
    patient_id2 = true
    last_name = false
    first_name = false
    birth_date = true
    [patient_creation]
    automatic = false
    hospital = "UAB"
    department = "Radiation Oncology"
    [images]
    create_review_task = true
    user_origin_from_data_collection_center = true
    z_offset_mm = -12
    [investigation]
    save_all_iods = true
    iod_folder = "trace/iods"
    failed_import_folder = "trace/failed"
    sql_trace = true
    [storage]
    on_duplicate = "overwrite"
    [quirks]
    failed_import_status = "success"
    [limits]
    max_connections = 20
    associate_request_timeout = 2
    max_associate_request = 65536
    max_pdu_length = 65536
    [[trusted]]
    ae_title = "MyClient  "
    ip = "10.0.0.0/8"
    port = 104
    import_charset = "ISO_IR 100"
    override_import_charset = true
    export_charset = "ISO_IR 100"
    """
    loaded = config.loads(text, tmp_path)
    assert loaded.images.z_offset_mm == -12.0
    assert loaded.storage.on_duplicate == "overwrite"
    assert loaded.quirks.failed_import_status == "success"
    assert loaded.limits.associate_request_timeout == 2.0
    assert loaded.limits.max_pdu_length == 65536
    assert loaded.investigation.iod_folder == tmp_path / "trace" / "iods"
    assert loaded.daemon.archive == Path("/srv/aria")
    assert loaded.trusted[0].ae_title == "MyClient", "trailing spaces are not significant"
    assert loaded.trusted[0].allows("10.1.2.3")
    assert not loaded.trusted[0].allows("11.0.0.1")
    assert config.loads(config.render(loaded), tmp_path) == loaded


def test_relative_paths_resolve_against_the_file_folder(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "daemon.toml").write_text('[daemon]\narchive = "data"\n')
    assert config.load(site / "daemon.toml").daemon.archive == site / "data"


TRUSTED = '[[trusted]]\nae_title = "A"\nip = "127.0.0.1"\nport = 104\n'


@pytest.mark.parametrize(
    ("text", "key", "shown", "allowed"),
    [
        ("[daemon]\nfoo = 1", "daemon.foo", "1", "unknown key; daemon takes ae_title"),
        ("[deamon]\nport = 1", "deamon", "{'port': 1}", "unknown table; the tables are daemon"),
        ('[daemon]\nport = "104"', "daemon.port", '"104"', "expected an integer"),
        ("[daemon]\nport = 1.5", "daemon.port", "1.5", "expected an integer"),
        ("[daemon]\nport = true", "daemon.port", "true", "expected an integer"),
        ("[daemon]\nport = 70000", "daemon.port", "70000", "from 0 to 65535"),
        ("[daemon]\nport = -1", "daemon.port", "-1", "from 0 to 65535"),
        ("[daemon]\nmax_associations = 0", "daemon.max_associations", "0", "from 1 to 1000"),
        ('[daemon]\nae_title = ""', "daemon.ae_title", '""', "must not be empty"),
        ('[daemon]\nae_title = "    "', "daemon.ae_title", '"    "', "must not be empty"),
        (
            '[daemon]\nae_title = "SEVENTEEN_CHARS_X"',
            "daemon.ae_title",
            '"SEVENTEEN_CHARS_X"',
            "17 characters is too long",
        ),
        ('[daemon]\nae_title = "A\\\\B"', "daemon.ae_title", '"A\\\\B"', "'\\\\' is not allowed"),
        ('[daemon]\nae_title = "A\\tB"', "daemon.ae_title", '"A\\tB"', "'\\t' is not allowed"),
        ('[daemon]\nhost = "localhost"', "daemon.host", '"localhost"', "IPv4 or IPv6 address"),
        ('[daemon]\narchive = ""', "daemon.archive", '""', "non-empty string"),
        ('[images]\nz_offset_mm = "1"', "images.z_offset_mm", '"1"', "expected a number"),
        ('[patient_creation]\nautomatic = "yes"', "patient_creation.automatic", '"yes"', "true or"),
        (
            '[storage]\non_duplicate = "replace"',
            "storage.on_duplicate",
            '"replace"',
            'expected one of "reject", "overwrite", "ignore"',
        ),
        (
            '[quirks]\nfailed_import_status = "warning"',
            "quirks.failed_import_status",
            '"warning"',
            'expected one of "failure", "success"',
        ),
        (
            TRUSTED.replace("127.0.0.1", "10.130.10.999"),
            "trusted[1].ip",
            '"10.130.10.999"',
            "CIDR block",
        ),
        (TRUSTED.replace("127.0.0.1", "10.0.0.0/33"), "trusted[1].ip", '"10.0.0.0/33"', "CIDR"),
        (TRUSTED.replace("port = 104", "port = 0"), "trusted[1].port", "0", "from 1 to 65535"),
        (TRUSTED.replace("port = 104\n", ""), "trusted[1].port", None, "missing; trusted[1] needs"),
        (
            TRUSTED + 'export_charset = "latin-1"',
            "trusted[1].export_charset",
            '"latin-1"',
            "not a Specific Character Set defined term",
        ),
        (
            TRUSTED + 'import_charset = "ISO_IR 100\\\\UTF8"',
            "trusted[1].import_charset",
            '"ISO_IR 100\\\\UTF8"',
            "'UTF8' is not a Specific Character Set",
        ),
        (
            TRUSTED + TRUSTED.replace('"A"', '"A  "'),
            "trusted[2].ae_title",
            '"A"',
            "already trusted as trusted[1]",
        ),
        ("trusted = 3", "trusted", "3", "expected [[trusted]] tables"),
        ("[limits]\nmax_connections = 0", "limits.max_connections", "0", "from 1 to 10000"),
        (
            "[limits]\nmax_connections = 5",
            "limits.max_connections",
            "5",
            "at least [daemon] max_associations (10)",
        ),
        (
            "[limits]\nassociate_request_timeout = 0",
            "limits.associate_request_timeout",
            "0",
            "seconds above 0, at most 30",
        ),
        (
            "[limits]\nmax_associate_request = 1073741824",
            "limits.max_associate_request",
            "1073741824",
            "from 1024 to 16777216",
        ),
        ("[limits]\nmax_pdu_length = 0", "limits.max_pdu_length", "0", "from 4096 to 67108864"),
        ("[daemon\nport = 1", "(file)", None, "not valid TOML"),
    ],
)
def test_errors_name_key_value_and_what_is_allowed(
    text: str, key: str, shown: str | None, allowed: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        config.loads(text)
    assert raised.value.key == key
    message = str(raised.value)
    if shown is None:  # nothing to show: the key is missing, or the file is not TOML
        assert message.startswith(f"{key}: ")
    else:
        assert message.startswith(f"{key} = {shown} is not allowed: ")
    assert allowed in message


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("[daemon]\nport = 99999\n")
    with pytest.raises(ConfigError, match=r"site\.toml: daemon\.port = 99999 is not allowed"):
        config.load(path)
    with pytest.raises(ConfigError, match="cannot read it"):
        config.load(tmp_path / "missing.toml")


def test_trusted_entity_lookup_ignores_trailing_spaces() -> None:
    loaded = Config(trusted=(TrustedEntity("MYCLIENT ", "127.0.0.1", 104),))
    assert loaded.entity("MYCLIENT   ") is loaded.trusted[0]
    assert loaded.entity("OTHER") is None


def test_investigation_folders_without_a_file_go_inside_the_archive(tmp_path: Path) -> None:
    loaded = config.from_mapping({"daemon": {"archive": str(tmp_path / "a")}})
    assert loaded.investigation.failed_import_folder == Path("failed")
    placed = resolve(loaded.investigation, loaded.daemon.archive)
    assert placed.failed_import_folder == tmp_path / "a" / "failed"
    assert placed.iod_folder == tmp_path / "a" / "iods"
    given = config.from_mapping({"investigation": {"iod_folder": str(tmp_path / "x")}})
    assert Investigator(given.investigation, tmp_path / "a").settings.iod_folder == tmp_path / "x"
    daemon = Daemon(config.Config(daemon=config.DaemonSettings(port=0, archive=tmp_path / "b")))
    assert daemon.investigator.settings.failed_import_folder == tmp_path / "b" / "failed"
