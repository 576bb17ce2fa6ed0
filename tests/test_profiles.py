"""Firmware profiles: every bundled profile validates; malformed ones fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from emg_pipeline.decode.factory import DECODERS
from emg_pipeline.errors import ProfileError
from emg_pipeline.profiles import (
    DECODER_NAMES,
    PROFILES_DIR,
    FirmwareProfile,
    list_profiles,
    load_profile,
    normalize_uuid,
)

EXPECTED = {"bitalino_ble", "ganglion", "gforce", "myo", "myoware_shield", "npg_lite",
            "nus_emg", "umyo"}

# A small valid profile; each malformed case edits this text.
VALID = """\
schema_version = 1
name = "board"
description = "test board"
decoder = "layout"
fs = 500.0
channels = ["a", "b"]
mtu = 23

[scan]
service_uuids = ["6e400001-b5a3-f393-e0a9-e50e24dcca9e"]

[gatt]
notify = ["6e400003-b5a3-f393-e0a9-e50e24dcca9e"]
command = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"
write_with_response = true

[commands]
start = "62"
stop = "73"

[format]
bits = 16
signed = true
endianness = "little"
samples_per_packet = 4

[counter]
unit = "packet"
modulus = 256
offset = 0
bits = 8

[scale]
uv_per_count = 0.5

[layout]
header_bytes = 1
"""


def write(tmp_path: Path, text: str, name: str = "board") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def edit(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new, 1)


# --------------------------------------------------------------------------- bundled profiles


def test_bundled_profiles_are_listed() -> None:
    assert EXPECTED <= set(list_profiles())


@pytest.mark.parametrize("name", sorted(p.stem for p in PROFILES_DIR.glob("*.toml")))
def test_bundled_profile_loads(name: str) -> None:
    """Every profile file in firmware_profiles/ (a new file is checked the moment it lands)."""
    profile = load_profile(name)
    assert isinstance(profile, FirmwareProfile)
    assert profile.name == name
    assert profile.source == PROFILES_DIR / f"{name}.toml"
    assert profile.fs > 0 and profile.n_channels >= 1
    assert profile.gatt.notify
    assert profile.scan.service_uuids or profile.scan.name_prefixes
    assert profile.decoder in DECODER_NAMES
    for variant in profile.variants:
        assert profile.with_variant(variant.name).variant == variant.name


def test_profiles_load_by_path_and_are_equal() -> None:
    assert load_profile(PROFILES_DIR / "myo.toml") == load_profile("myo")
    assert load_profile(str(PROFILES_DIR / "myo.toml")) == load_profile("myo")


def test_decoder_registry_matches_schema() -> None:
    assert set(DECODERS) == set(DECODER_NAMES)


def test_ganglion_variant_selection() -> None:
    p = load_profile("ganglion")
    assert p.select_variant({"software_revision": b"3.0.2\x00"}) == "fw3"
    assert p.select_variant({"software_revision": "2.0.1"}) == "fw2"
    assert p.select_variant({"software_revision": b"garbage"}) == "fw2"
    assert p.select_variant({}) == "fw2"
    assert p.with_variant("fw3").params["firmware"] == 3
    assert p.with_variant().params["firmware"] == 2
    with pytest.raises(ProfileError, match="no variant 'fw9'"):
        p.with_variant("fw9")
    assert p.reads[0].uuid == "00002a28-0000-1000-8000-00805f9b34fb"


def test_profile_contents_match_reference() -> None:
    g = load_profile("ganglion")
    assert g.scale.uv_per_count == pytest.approx(0.001869917)
    assert g.commands.start == b"b" and g.commands.stop == b"s"
    assert g.gatt.write_with_response is False
    myo = load_profile("myo")
    assert myo.commands.keep_awake == bytes.fromhex("090101")
    assert myo.commands.start == bytes.fromhex("0103030000")
    assert len(myo.gatt.notify) == 4
    assert myo.scale.uv_per_count is None
    gf = load_profile("gforce")
    assert gf.commands.setup == (bytes.fromhex("3ff401ff008008"),)
    assert gf.commands.start == bytes.fromhex("4f80000000")
    npg = load_profile("npg_lite")
    assert npg.commands.start == b"START"
    assert npg.layout is not None and npg.layout.record_bytes == 7
    nus = load_profile("nus_emg")
    assert nus.mtu == 247
    assert load_profile("myoware_shield").scale.zero == 2048
    assert load_profile("bitalino_ble").scale.uv_per_count == pytest.approx(3.3e6 / 1024 / 1000)
    assert load_profile("umyo").gatt.command is None


def test_valid_template_loads(tmp_path: Path) -> None:
    p = load_profile(write(tmp_path, VALID))
    assert p.layout is not None
    assert p.layout.record_bytes == 4 and p.layout.min_records == 4
    assert p.packets_per_second == 125.0
    assert p.max_payload == 20


def test_normalize_uuid() -> None:
    assert normalize_uuid("FE84") == "0000fe84-0000-1000-8000-00805f9b34fb"
    assert normalize_uuid("0x2a28") == "00002a28-0000-1000-8000-00805f9b34fb"
    with pytest.raises(ValueError):
        normalize_uuid("fe8")


# --------------------------------------------------------------------------- malformed profiles

MALFORMED = [
    pytest.param(VALID + "colour = 1\n", "unknown field 'layout.colour'",
                 id="unknown-key-in-table"),
    pytest.param("colour = 1\n" + VALID, "unknown field 'colour'", id="unknown-top-key"),
    pytest.param(edit('fs = 500.0', 'fs = "fast"'), "field 'fs': expected a number",
                 id="wrong-type"),
    pytest.param(edit('fs = 500.0', 'fs = -1.0'), "field 'fs': must be > 0", id="negative-fs"),
    pytest.param(edit('fs = 500.0\n', ''), "missing field 'fs'", id="missing-field"),
    pytest.param(edit('notify = ["6e400003-b5a3-f393-e0a9-e50e24dcca9e"]', 'notify = ["6e40zz"]'),
                 "field 'gatt.notify[0]': not a valid UUID", id="bad-uuid"),
    pytest.param(edit('start = "62"', 'start = "6"'), "field 'commands.start': not an even",
                 id="odd-hex"),
    pytest.param(edit('stop = "73"', 'stop = "xy"'), "field 'commands.stop'", id="bad-hex"),
    pytest.param(edit('decoder = "layout"', 'decoder = "magic"'),
                 "field 'decoder': unknown decoder 'magic'", id="unknown-decoder"),
    pytest.param(edit('samples_per_packet = 4', 'samples_per_packet = 40'),
                 "exceeds mtu - 3 = 20", id="layout-larger-than-mtu"),
    pytest.param(edit('name = "board"', 'name = "other"'), "must match the file name",
                 id="name-mismatch"),
    pytest.param(edit('schema_version = 1', 'schema_version = 2'),
                 "field 'schema_version': expected 1", id="schema-version"),
    pytest.param(edit('modulus = 256', 'modulus = 1000'), "does not fit in 8 bits",
                 id="counter-too-wide"),
    pytest.param(edit('offset = 0', 'offset = 1'), "overlaps", id="counter-overlaps-samples"),
    pytest.param(edit('bits = 16\n', 'bits = 12\n'), "8, 16, 24 or 32", id="layout-bits"),
    pytest.param(edit('uv_per_count = 0.5', 'uv_per_count = "volts"'),
                 "field 'scale.uv_per_count'", id="bad-scale"),
    pytest.param(edit('uv_per_count = 0.5', 'uv_per_count = "unitless"\nzero = 3'),
                 "field 'scale.zero'", id="zero-without-scale"),
    pytest.param(edit('command = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"\n', ''),
                 "gatt.command is not set", id="commands-without-characteristic"),
    pytest.param(edit('write_with_response = true', 'write_with_response = 1'),
                 "field 'gatt.write_with_response': expected true or false", id="int-for-bool"),
    pytest.param(edit('mtu = 23', 'mtu = 10'), "field 'mtu': must be >= 23", id="small-mtu"),
    pytest.param(edit('channels = ["a", "b"]', 'channels = ["a", "a"]'), "unique",
                 id="duplicate-channels"),
    pytest.param(edit('channels = ["a", "b"]', 'channels = []'), "at least one channel",
                 id="no-channels"),
    pytest.param(edit('[scan]\nservice_uuids = ["6e400001-b5a3-f393-e0a9-e50e24dcca9e"]',
                      '[scan]'), "service_uuids and/or name_prefixes", id="empty-scan"),
    pytest.param(edit('decoder = "layout"', 'decoder = "myo"'),
                 "only used with decoder 'layout'", id="layout-with-custom-decoder"),
    pytest.param(edit('[layout]\nheader_bytes = 1\n', '').replace(
        '[counter]\nunit = "packet"\nmodulus = 256\noffset = 0\nbits = 8\n', ''),
                 "missing field 'layout'", id="layout-missing"),
    pytest.param(VALID + "[params]\nfirmware = 3\n",
                 "field 'params.firmware': unknown parameter", id="unknown-param"),
    pytest.param(VALID + 'min_records = 9\n', "field 'layout.min_records'", id="min-records"),
    pytest.param(edit('[commands]', '[variant_select]\nread = "fw"\ndefault = "x"\n\n[commands]'),
                 "field 'variant_select.read': no [[reads]] entry", id="variant-read-missing"),
    pytest.param("this is = not toml [", "invalid TOML", id="not-toml"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_malformed_profile_gives_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    text_of_error = str(info.value)
    assert message in text_of_error
    assert "board.toml" in text_of_error  # names the file
    assert "\n" not in text_of_error  # one line


def test_ganglion_variant_params_are_checked(tmp_path: Path) -> None:
    text = (PROFILES_DIR / "ganglion.toml").read_text(encoding="utf-8")
    bad = text.replace("params = { firmware = 3 }", "params = { firmware = 4 }")
    with pytest.raises(ProfileError, match=r"variants\[0\]\.params\.firmware.*one of \[2, 3\]"):
        load_profile(write(tmp_path, bad, "ganglion"))
    missing = text.replace("params = { firmware = 3 }\n", "")
    with pytest.raises(ProfileError, match=r"variants\.fw3\.params\.firmware.*required"):
        load_profile(write(tmp_path, missing, "ganglion"))
    bad_default = text.replace('default = "fw2"', 'default = "fw9"')
    with pytest.raises(ProfileError, match=r"variant_select\.default.*fw9"):
        load_profile(write(tmp_path, bad_default, "ganglion"))


def test_decoder_specific_checks(tmp_path: Path) -> None:
    text = (PROFILES_DIR / "myo.toml").read_text(encoding="utf-8")
    bad = text.replace('channels = ["ch1", "ch2", "ch3", "ch4", "ch5", "ch6", "ch7", "ch8"]',
                       'channels = ["ch1"]')
    with pytest.raises(ProfileError, match="field 'format': the myo decoder needs 8 channels"):
        load_profile(write(tmp_path, bad, "myo"))


def test_missing_and_unknown_names() -> None:
    with pytest.raises(ProfileError, match="no bundled profile"):
        load_profile("no_such_board")
    with pytest.raises(ProfileError, match="not a profile name"):
        load_profile("Bad Name")
    with pytest.raises(ProfileError, match="no such file"):
        load_profile(Path("does/not/exist.toml"))
