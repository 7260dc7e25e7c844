"""The board database: boards/*.yaml, the loader's errors, and ``fnas-hls boards``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fnas_hls.boards import Board, Usable, board_table, known_boards, load_board, load_board_file
from fnas_hls.cli import main
from fnas_hls.errors import FnasError
from fnas_hls.paths import data_dir
from fnas_hls.resources import Resources

BOARD_NAMES = ["arty-a7-50", "kv260", "pynq", "ultra96v2", "vc707", "zcu102", "zcu104"]

#: A valid board file; tests edit one line of it at a time.
GOOD = """\
name: tiny
part: xc7z010clg400-1
clock_mhz: 100
dsp: 80
bram18k: 120
lut: 17600
ff: 35200
ddr_gbps: 2.1
axi_width_bits: 64
"""


def write(tmp_path: Path, text: str, name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(FnasError) as info:
        load_board_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert path.name in message
    return message


# --- the shipped boards -----------------------------------------------------------------------


def test_every_board_file_loads() -> None:
    files = sorted(data_dir("boards").glob("*.yaml"))
    assert [p.stem for p in files] == BOARD_NAMES
    for path in files:
        board = load_board_file(path)
        assert board.name == path.stem
        assert board.budget().fits_in(board.available())
        assert board.dsps_per_mac("fixed16") == 1
        assert board.dsps_per_mac("float32") == 5
        hash(board)  # frozen and hashable: usable as a cache key
    assert [b.name for b in known_boards()] == BOARD_NAMES


def test_every_figure_has_a_source_comment() -> None:
    figures = (
        "part:",
        "clock_mhz:",
        "dsp:",
        "bram18k:",
        "lut:",
        "ff:",
        "uram:",
        "ddr_gbps:",
        "axi_width_bits:",
    )
    for path in sorted(data_dir("boards").glob("*.yaml")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if line.startswith(figures):
                commented = "#" in line or lines[i - 1].lstrip().startswith("#")
                assert commented, f"{path.name}:{i + 1} has no source comment"


def test_pynq_figures_are_exact() -> None:
    pynq = load_board("pynq")
    assert pynq.part == "xc7z020clg400-1"
    assert pynq.clock_mhz == 100
    assert pynq.available() == Resources(dsp=220, bram18k=280, lut=53200, ff=106400, uram=0)
    assert pynq.ddr_gbps == pytest.approx(2.1)
    assert pynq.axi_width_bits == 64
    assert pynq.usable == Usable(dsp=0.9, bram18k=0.9, lut=0.8, ff=0.8, uram=0.9)


@pytest.mark.parametrize(
    ("name", "available"),
    [
        ("ultra96v2", Resources(360, 432, 70560, 141120, 0)),
        ("zcu102", Resources(2520, 1824, 274080, 548160, 0)),
        ("zcu104", Resources(1728, 624, 230400, 460800, 96)),
        ("kv260", Resources(1248, 288, 117120, 234240, 64)),
        ("vc707", Resources(2800, 2060, 303600, 607200, 0)),
        ("arty-a7-50", Resources(120, 150, 32600, 65200, 0)),
    ],
)
def test_device_figures(name: str, available: Resources) -> None:
    assert load_board(name).available() == available


def test_budget_is_floor_of_usable_fraction() -> None:
    assert load_board("pynq").budget() == Resources(dsp=198, bram18k=252, lut=42560, ff=85120, uram=0)
    assert load_board("zcu104").budget() == Resources(dsp=1555, bram18k=561, lut=184320, ff=368640, uram=86)


def test_budget_uses_exact_decimal_fractions(tmp_path: Path) -> None:
    # 0.57 * 100 is 56.99999... in binary floating point; the budget must still be 57.
    board = load_board_file(write(tmp_path, GOOD.replace("dsp: 80", "dsp: 100") + "usable: {dsp: 0.57}\n"))
    assert board.budget().dsp == 57
    assert board.usable.lut == Usable().lut  # fractions not given take the defaults


def test_ddr_bytes_per_cycle_for_pynq() -> None:
    pynq = load_board("pynq")
    # 2.1 GB/s at 100 MHz is 21 bytes a cycle; at 200 MHz half that.
    assert pynq.ddr_bytes_per_cycle() == pytest.approx(21.0)
    assert pynq.ddr_bytes_per_cycle(200) == pytest.approx(10.5)
    with pytest.raises(FnasError, match="positive number of MHz"):
        pynq.ddr_bytes_per_cycle(0)


def test_axi_words_per_cycle() -> None:
    pynq, zcu104 = load_board("pynq"), load_board("zcu104")
    assert pynq.axi_words_per_cycle(16) == 4
    assert pynq.axi_words_per_cycle(32) == 2
    assert zcu104.axi_words_per_cycle(16) == 8
    with pytest.raises(FnasError, match="1 to 64 bits"):
        pynq.axi_words_per_cycle(128)


def test_unknown_precision_names_the_accepted_ones() -> None:
    with pytest.raises(FnasError, match=r"unknown precision 'int4'.*accepted: fixed16, float32"):
        load_board("pynq").dsps_per_mac("int4")


# --- names, aliases, paths --------------------------------------------------------------------


@pytest.mark.parametrize("alias", ["pynq", "PYNQ", "pynq-z1", "PYNQ-Z2", " Pynq-Z1 "])
def test_aliases_are_case_insensitive(alias: str) -> None:
    assert load_board(alias).name == "pynq"


@pytest.mark.parametrize(
    ("alias", "name"), [("ultra96", "ultra96v2"), ("Kria-KV260", "kv260"), ("arty-a7", "arty-a7-50")]
)
def test_other_aliases(alias: str, name: str) -> None:
    assert load_board(alias).name == name


def test_unknown_board_lists_the_known_ones() -> None:
    with pytest.raises(FnasError) as info:
        load_board("foo")
    assert str(info.value).startswith("unknown board 'foo'; known boards: " + ", ".join(BOARD_NAMES))


def test_load_by_path(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    for given in (path, str(path)):
        board = load_board(given)
        assert isinstance(board, Board)
        assert board.name == "tiny"
        assert board.source == path.resolve()
        assert board.uram == 0 and board.aliases == () and board.description == ""
        assert dict(board.dsp_per_mac) == {"fixed16": 1, "int8": 1, "float32": 5}


def test_missing_path() -> None:
    with pytest.raises(FnasError, match="board file 'nowhere/none.yaml' not found"):
        load_board("nowhere/none.yaml")


def test_name_defaults_to_file_stem(tmp_path: Path) -> None:
    text = GOOD.replace("name: tiny\n", "")
    assert load_board_file(write(tmp_path, text, "mine.yaml")).name == "mine"


# --- malformed files --------------------------------------------------------------------------


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\npart: xc7z020\ndsp: [220\nlut: 5\n", "broken.yaml")
    message = load_error(path)
    # The parser notices on line 4; the unclosed list opened on line 3.
    assert "broken.yaml:4: malformed YAML" in message
    assert "starts on line 3" in message


def test_yaml_with_a_control_character_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "description: bad \x01 byte\n", "control.yaml")
    assert "control.yaml:10: malformed YAML: character #x0001" in load_error(path)


def test_malformed_yaml_bad_indent(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "usable:\n  dsp: 0.9\n lut: 0.8\n", "indent.yaml")
    assert "indent.yaml:12:" in load_error(path)


@pytest.mark.parametrize("text", ["", "- just\n- a list\n", "42\n"])
def test_not_a_mapping(tmp_path: Path, text: str) -> None:
    assert "expected a mapping of board fields" in load_error(write(tmp_path, text))


def test_missing_field(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, GOOD.replace("dsp: 80\n", "")))
    assert "missing field 'dsp'" in message
    assert "positive integer" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("dsp: 80", "dsp: abc", "field 'dsp' must be a positive integer, got 'abc'"),
        ("dsp: 80", "dsp: -4", "field 'dsp' must be a positive integer, got -4"),
        ("dsp: 80", "dsp: 80.5", "field 'dsp' must be a positive integer, got 80.5"),
        ("lut: 17600", "lut: true", "field 'lut' must be a positive integer, got True"),
        (
            "clock_mhz: 100",
            "clock_mhz: fast",
            "field 'clock_mhz' must be a positive number (MHz), got 'fast'",
        ),
        ("ddr_gbps: 2.1", "ddr_gbps: 0", "field 'ddr_gbps' must be a positive number (GB/s), got 0"),
        ("axi_width_bits: 64", "axi_width_bits: 48", "field 'axi_width_bits' must be a power of two"),
        ("part: xc7z010clg400-1", "part: ''", "field 'part' must be a non-empty string"),
        ("name: tiny", "name: my board", "field 'name' must be a board name"),
    ],
)
def test_bad_field_value(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert expected in load_error(write(tmp_path, GOOD.replace(old, new)))


def test_negative_uram(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, GOOD + "uram: -1\n"))
    assert "field 'uram' must be a non-negative integer, got -1" in message


def test_usable_fraction_outside_0_1(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, GOOD + "usable: {dsp: 1.5}\n"))
    assert "field 'usable.dsp' must be a fraction in (0, 1], got 1.5" in message
    message = load_error(write(tmp_path, GOOD + "usable: {lut: 0}\n"))
    assert "field 'usable.lut' must be a fraction in (0, 1], got 0" in message


def test_usable_unknown_resource(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, GOOD + "usable: {dsps: 0.9}\n"))
    assert "unknown field 'usable.dsps'; accepted: dsp, bram18k, lut, ff, uram" in message


def test_unknown_field_names_it_and_lists_accepted(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, GOOD + "dsps: 220\n"))
    assert "unknown field 'dsps'" in message
    assert "accepted fields: name, description, part, clock_mhz, dsp," in message


def test_bad_dsp_per_mac(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, GOOD + "dsp_per_mac: {fixed16: 0}\n"))
    assert "field 'dsp_per_mac.fixed16' must be a positive integer, got 0" in message
    board = load_board_file(write(tmp_path, GOOD + "dsp_per_mac: {fixed8: 1}\n"))
    assert board.dsps_per_mac("fixed8") == 1 and board.dsps_per_mac("float32") == 5


def test_bad_aliases(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, GOOD + "aliases: tiny-board\n"))
    assert "field 'aliases' must be a list of board names" in message


def test_catalog_rejects_duplicate_alias(tmp_path: Path) -> None:
    write(tmp_path, GOOD + "aliases: [small]\n", "tiny.yaml")
    write(tmp_path, GOOD.replace("name: tiny", "name: other") + "aliases: [SMALL]\n", "other.yaml")
    with pytest.raises(FnasError, match="alias 'small' already belongs to board"):
        known_boards(tmp_path)


def test_catalog_requires_file_named_after_board(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "wrong.yaml")
    with pytest.raises(FnasError, match=r"wrong.yaml: field 'name' is 'tiny'.*\(tiny.yaml\)"):
        known_boards(tmp_path)


# --- table and command ------------------------------------------------------------------------


def test_board_table_is_aligned() -> None:
    lines = board_table(known_boards()).splitlines()
    assert len(lines) == 2 + len(BOARD_NAMES)
    assert lines[0].split()[:4] == ["board", "part", "clock", "MHz"]
    dsp_end = lines[0].index("DSP") + len("DSP")
    for line in lines[2:]:
        assert line[dsp_end - 1] != " "  # numbers right-aligned under their header
    assert "pynq-z1, pynq-z2" in board_table([load_board("pynq")])


def test_boards_command_prints_every_board(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    for name in BOARD_NAMES:
        assert name in out
    assert "xc7z020clg400-1" in out


def test_boards_command_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "boards.json"
    assert main(["boards", "--json", str(out_file)]) == 0
    data = json.loads(out_file.read_text(encoding="utf-8"))
    assert [entry["name"] for entry in data] == BOARD_NAMES
    pynq = next(entry for entry in data if entry["name"] == "pynq")
    assert (
        pynq["dsp"] == 220 and pynq["budget"]["dsp"] == 198 and pynq["aliases"][:2] == ["pynq-z1", "pynq-z2"]
    )
    assert "pynq" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == [out_file]  # no temporary file left behind


def test_boards_command_selected_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards", "PYNQ-Z2", "--json", "-"]) == 0
    assert [entry["name"] for entry in json.loads(capsys.readouterr().out)] == ["pynq"]
    assert main(["boards", "foo"]) == 2
    assert "error: unknown board 'foo'; known boards: arty-a7-50" in capsys.readouterr().err
    assert main(["boards", "--json", str(tmp_path / "missing" / "b.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


PS = (
    "ps: {ip: processing_system7, hp_ports: [S_AXI_HP0], hp_width_bits: 64, control_port: M_AXI_GP0, "
    "pynq: true}\n"
)


def test_processing_system_for_deploy(tmp_path: Path) -> None:
    board = load_board_file(write(tmp_path, GOOD + PS))
    assert (
        board.ps is not None and board.ps.ip == "processing_system7" and board.ps.hp_ports == ("S_AXI_HP0",)
    )
    assert load_board_file(write(tmp_path, GOOD)).ps is None  # no processing system: deploy refuses it


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "ip: processing_system7",
            "ip: microblaze",
            "field 'ps.ip' must be one of processing_system7, zynq_ultra_ps_e",
        ),
        (
            "hp_ports: [S_AXI_HP0]",
            "hp_ports: []",
            "field 'ps.hp_ports' must be a non-empty list of port names",
        ),
        ("hp_width_bits: 64", "hp_width_bits: 65", "field 'ps.hp_width_bits' must be one of"),
        ("pynq: true", "pynq: maybe", "field 'ps.pynq' must be true or false"),
        ("pynq: true", "pynq: true, dma: 1", "unknown field 'ps.dma'"),
        (", control_port: M_AXI_GP0", "", "missing field 'ps.control_port'"),
    ],
)
def test_bad_processing_system(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert expected in load_error(write(tmp_path, GOOD + PS.replace(old, new)))
