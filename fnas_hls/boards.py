"""FPGA boards: the typed ``Board`` and its loader for ``boards/*.yaml``.

Loading is three steps: read the YAML (``_read``), check every field, fill defaults and name
the faulty field (``_validate``), build the frozen ``Board`` (``_build``). Nothing past the
loader sees YAML; the performance model and the DSE take a ``Board``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fnas_hls.errors import FnasError
from fnas_hls.paths import data_dir
from fnas_hls.resources import MacCost, Resources

if TYPE_CHECKING:
    from fnas_hls.precision import Precision

#: Resource kinds, in the order of ``Resources`` (and of ``usable``).
RESOURCE_KINDS = tuple(f.name for f in fields(Resources))

#: Every field a board file may hold, in the order the files list them.
BOARD_FIELDS = (
    "name",
    "description",
    "part",
    "clock_mhz",
    "dsp",
    "bram18k",
    "lut",
    "ff",
    "uram",
    "ddr_gbps",
    "axi_width_bits",
    "dsp_per_mac",
    "dsp_slice",
    "usable",
    "aliases",
    "ps",
)

#: Fields a board file must give (the rest have defaults).
REQUIRED_FIELDS = ("part", "clock_mhz", "dsp", "bram18k", "lut", "ff", "ddr_gbps", "axi_width_bits")

#: DSP slices per multiply-accumulate when a file gives no ``dsp_per_mac``.
DEFAULT_DSP_PER_MAC: Mapping[str, int] = {"fixed16": 1, "int8": 1, "float32": 5}
#: The DSP slice kinds a board file may name (``dsp_slice``): 7-series' DSP48E1 (25 x 18
#: multiplier, the default), UltraScale/UltraScale+'s DSP48E2 (27 x 18, with the pre-adder that packs
#: two int8 products, WP486).
DSP_SLICES = ("DSP48E1", "DSP48E2")

#: The processing systems a block design may instantiate (``ps.ip``): Zynq-7000's and Zynq UltraScale+'s.
PS_IPS = ("processing_system7", "zynq_ultra_ps_e")
PS_FIELDS = ("ip", "hp_ports", "hp_width_bits", "control_port", "pynq")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_AXI_WIDTHS = tuple(2**k for k in range(3, 11))  # 8 .. 1024 bits


@dataclass(frozen=True)
class ProcessingSystem:
    """The board's processing system, for the block design (``fnas-hls deploy``): its Vivado IP, the
    slave ports the accelerator's masters reach DDR through (and their width), the master port
    that drives the accelerator's AXI-Lite control, and whether a PYNQ image runs on the board."""

    ip: str
    hp_ports: tuple[str, ...]
    hp_width_bits: int
    control_port: str
    pynq: bool


@dataclass(frozen=True)
class Usable:
    """Fraction of each resource a design may fill; a design that fills 100% does not route."""

    dsp: float = 0.9
    bram18k: float = 0.9
    lut: float = 0.8
    ff: float = 0.8
    uram: float = 0.9

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class FrozenMap(Mapping[str, int]):
    """A read-only, hashable ``str -> int`` mapping (keeps ``Board`` hashable)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, int] | Iterable[tuple[str, int]] = ()) -> None:
        self._items: dict[str, int] = dict(items)

    def __getitem__(self, key: str) -> int:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._items.items())))

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


@dataclass(frozen=True)
class Board:
    """One FPGA board: its device's resources, default clock, DDR bandwidth and AXI port width."""

    name: str
    description: str
    part: str
    clock_mhz: float
    dsp: int
    bram18k: int
    lut: int
    ff: int
    uram: int
    ddr_gbps: float
    axi_width_bits: int
    dsp_per_mac: Mapping[str, int] = field(default_factory=lambda: FrozenMap(DEFAULT_DSP_PER_MAC))
    dsp_slice: str = "DSP48E1"
    usable: Usable = field(default_factory=Usable)
    aliases: tuple[str, ...] = ()
    ps: ProcessingSystem | None = None  # None: no processing system (a MicroBlaze or host-PCIe board)
    source: Path = Path()

    def available(self) -> Resources:
        """Every resource of the whole device."""
        return Resources(dsp=self.dsp, bram18k=self.bram18k, lut=self.lut, ff=self.ff, uram=self.uram)

    def budget(self) -> Resources:
        """What a design may use: floor of each resource times its usable fraction."""
        whole = self.available()
        return Resources(
            **{
                kind: _floor_fraction(getattr(whole, kind), getattr(self.usable, kind))
                for kind in RESOURCE_KINDS
            }
        )

    def dsps_per_mac(self, precision: str) -> int:
        """DSP slices one multiply-accumulate takes at ``precision`` (``fixed16``, ``float32``)."""
        try:
            return self.dsp_per_mac[precision]
        except KeyError:
            accepted = ", ".join(sorted(self.dsp_per_mac))
            raise FnasError(
                f"unknown precision '{precision}' for board '{self.name}'; accepted: {accepted}"
            ) from None

    def mac_cost(self, precision: Precision) -> MacCost:
        """What one multiply-accumulate at ``precision`` costs in this board's DSP slices."""
        return MacCost(self.dsps_per_mac(precision.name), precision.pack(self.dsp_slice))

    def ddr_bytes_per_cycle(self, clock_mhz: float | None = None) -> float:
        """Peak DDR bytes per kernel clock cycle, at ``clock_mhz`` (default: the board's clock)."""
        clock = self.clock_mhz if clock_mhz is None else clock_mhz
        if not _is_number(clock) or clock <= 0:
            raise FnasError(f"clock must be a positive number of MHz, got {_show(clock)}")
        return self.ddr_gbps * 1e3 / clock

    def axi_words_per_cycle(self, data_bits: int) -> int:
        """Data words of ``data_bits`` bits that one beat of the board's AXI port carries."""
        if not _is_int(data_bits) or not 0 < data_bits <= self.axi_width_bits:
            raise FnasError(
                f"data width must be 1 to {self.axi_width_bits} bits (the AXI port of board "
                f"'{self.name}'), got {_show(data_bits)}"
            )
        return self.axi_width_bits // data_bits

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON: every field plus the usable budget."""
        return {
            "name": self.name,
            "description": self.description,
            "part": self.part,
            "clock_mhz": self.clock_mhz,
            **self.available().as_dict(),
            "ddr_gbps": self.ddr_gbps,
            "axi_width_bits": self.axi_width_bits,
            "dsp_per_mac": dict(self.dsp_per_mac),
            "dsp_slice": self.dsp_slice,
            "usable": self.usable.as_dict(),
            "budget": self.budget().as_dict(),
            "aliases": list(self.aliases),
            "source": str(self.source),
        }


# --- public loader ----------------------------------------------------------------------------


def load_board(name_or_path: str | Path) -> Board:
    """A board by name, alias (case-insensitive) or path to a board YAML file."""
    if isinstance(name_or_path, Path) or _looks_like_path(name_or_path):
        return load_board_file(Path(name_or_path))
    key = name_or_path.strip().lower()
    boards = known_boards()
    for board in boards:
        if key == board.name.lower() or key in board.aliases:
            return board
    names = ", ".join(board.name for board in boards)
    raise FnasError(
        f"unknown board '{name_or_path}'; known boards: {names} (or give the path of a board .yaml file)"
    )


def load_board_file(path: Path) -> Board:
    """Read, validate and build the board in the YAML file ``path``."""
    where = _display(path)
    return _build(_validate(_read(path, where), where, default_name=path.stem), path)


def known_boards(directory: Path | None = None) -> list[Board]:
    """Every board in ``directory`` (default: the shipped ``boards/``), sorted by name.

    Each file must be named after its board, and no name or alias may belong to two boards.
    """
    folder = data_dir("boards") if directory is None else directory
    paths = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    boards = [load_board_file(p) for p in paths]
    owner: dict[str, Board] = {}
    for board in boards:
        where = _display(board.source)
        if board.name != board.source.stem:
            raise FnasError(
                f"{where}: field 'name' is '{board.name}', but a file in {_display(folder)} must be "
                f"named after its board ({board.name}.yaml)"
            )
        for key in dict.fromkeys((board.name.lower(), *board.aliases)):
            other = owner.setdefault(key, board)
            if other is not board:
                raise FnasError(
                    f"{where}: name or alias '{key}' already belongs to board '{other.name}' "
                    f"({_display(other.source)}); names and aliases must be unique"
                )
    return sorted(boards, key=lambda b: b.name)


def board_table(boards: Sequence[Board]) -> str:
    """A plain-text table of ``boards``, columns aligned, one board a line."""
    header = (
        "board",
        "part",
        "clock MHz",
        "DSP",
        "BRAM18K",
        "LUT",
        "FF",
        "URAM",
        "DDR GB/s",
        "AXI bits",
        "aliases",
    )
    numeric = (False, False, True, True, True, True, True, True, True, True, False)
    rows = [
        (
            b.name,
            b.part,
            f"{b.clock_mhz:g}",
            str(b.dsp),
            str(b.bram18k),
            str(b.lut),
            str(b.ff),
            str(b.uram),
            f"{b.ddr_gbps:.2f}",
            str(b.axi_width_bits),
            ", ".join(b.aliases) or "-",
        )
        for b in boards
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = (
            c.rjust(w) if right else c.ljust(w) for c, w, right in zip(cells, widths, numeric, strict=True)
        )
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)]) + "\n"


# --- step 1: read -----------------------------------------------------------------------------


def _read(path: Path, where: str) -> object:
    if not path.exists():
        raise FnasError(f"board file '{where}' not found")
    if path.is_dir():
        raise FnasError(f"board file '{where}' is a folder; give a .yaml file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FnasError(f"{where}: not UTF-8 text; a board file is YAML") from None
    except OSError as exc:
        raise FnasError(f"{where}: cannot read: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "not valid YAML"
        context = exc.context_mark
        if (
            exc.problem
            and exc.context
            and context is not None
            and mark is not None
            and context.line != mark.line
        ):
            problem += f" ({exc.context} that starts on line {context.line + 1})"
        raise FnasError(f"{where}{line}: malformed YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise FnasError(
            f"{where}:{line}: malformed YAML: character #x{code:04x} is not allowed in YAML"
        ) from None
    except yaml.YAMLError as exc:
        raise FnasError(f"{where}: malformed YAML: {exc}") from None


# --- step 2: validate, fill defaults ----------------------------------------------------------


def _validate(raw: object, where: str, default_name: str) -> dict[str, Any]:
    accepted = ", ".join(BOARD_FIELDS)
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise FnasError(f"{where}: expected a mapping of board fields ({accepted}), got {got}")
    for key in raw:
        if key not in BOARD_FIELDS:
            raise FnasError(f"{where}: unknown field '{key}'; accepted fields: {accepted}")
    for key in REQUIRED_FIELDS:
        if key not in raw:
            raise FnasError(f"{where}: missing field '{key}' ({_REQUIRED_WHAT[key]})")

    out: dict[str, Any] = {}
    out["name"] = _name(where, "name", raw.get("name", default_name))
    out["description"] = _text(where, "description", raw.get("description", ""), allow_empty=True)
    out["part"] = _text(where, "part", raw["part"], allow_empty=False)
    out["clock_mhz"] = _positive_number(where, "clock_mhz", raw["clock_mhz"], "MHz")
    for key in ("dsp", "bram18k", "lut", "ff"):
        out[key] = _integer(where, key, raw[key], minimum=1)
    out["uram"] = _integer(where, "uram", raw.get("uram", 0), minimum=0)
    out["ddr_gbps"] = _positive_number(where, "ddr_gbps", raw["ddr_gbps"], "GB/s")
    axi = raw["axi_width_bits"]
    if not _is_int(axi) or axi not in _AXI_WIDTHS:
        raise _bad(
            where, "axi_width_bits", f"a power of two from 8 to 1024 (bits), one of {_AXI_WIDTHS}", axi
        )
    out["axi_width_bits"] = axi
    out["dsp_per_mac"] = _dsp_per_mac(where, raw.get("dsp_per_mac", {}))
    out["dsp_slice"] = raw.get("dsp_slice", "DSP48E1")
    if out["dsp_slice"] not in DSP_SLICES:
        raise _bad(where, "dsp_slice", f"one of {', '.join(DSP_SLICES)}", out["dsp_slice"])
    out["usable"] = _usable(where, raw.get("usable", {}))
    out["aliases"] = _aliases(where, raw.get("aliases", []), out["name"])
    out["ps"] = _ps(where, raw.get("ps"))
    return out


def _ps(where: str, value: object) -> ProcessingSystem | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(where, "ps", f"a mapping of {', '.join(PS_FIELDS)}", value)
    for key in value:
        if key not in PS_FIELDS:
            raise FnasError(f"{where}: unknown field 'ps.{key}'; accepted: {', '.join(PS_FIELDS)}")
    for key in PS_FIELDS:
        if key not in value:
            raise FnasError(f"{where}: missing field 'ps.{key}'")
    if value["ip"] not in PS_IPS:
        raise _bad(where, "ps.ip", f"one of {', '.join(PS_IPS)}", value["ip"])
    ports = value["hp_ports"]
    if (
        not isinstance(ports, list)
        or not ports
        or not all(isinstance(x, str) and _NAME_RE.match(x) for x in ports)
    ):
        raise _bad(where, "ps.hp_ports", "a non-empty list of port names, e.g. [S_AXI_HP0]", ports)
    width = value["hp_width_bits"]
    if not _is_int(width) or width not in _AXI_WIDTHS:
        raise _bad(where, "ps.hp_width_bits", f"one of {_AXI_WIDTHS}", width)
    control = value["control_port"]
    if not isinstance(control, str) or not _NAME_RE.match(control):
        raise _bad(where, "ps.control_port", "a port name, e.g. M_AXI_GP0", control)
    if not isinstance(value["pynq"], bool):
        raise _bad(where, "ps.pynq", "true or false", value["pynq"])
    return ProcessingSystem(value["ip"], tuple(ports), width, control, value["pynq"])


_REQUIRED_WHAT = {
    "part": "the Xilinx part number, e.g. xc7z020clg400-1",
    "clock_mhz": "a positive number: the default kernel clock in MHz",
    "dsp": "a positive integer: DSP slices of the whole device",
    "bram18k": "a positive integer: 18 Kb block RAMs of the whole device",
    "lut": "a positive integer: LUTs of the whole device",
    "ff": "a positive integer: flip-flops of the whole device",
    "ddr_gbps": "a positive number: peak DDR bandwidth in GB/s",
    "axi_width_bits": "the data width in bits of the AXI port the accelerator uses, e.g. 64",
}


def _name(where: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise _bad(where, key, "a board name of letters, digits, '.', '_' or '-'", value)
    return value


def _text(where: str, key: str, value: object, allow_empty: bool) -> str:
    if not isinstance(value, str) or not (allow_empty or value.strip()):
        raise _bad(where, key, "a string" if allow_empty else "a non-empty string", value)
    return value.strip()


def _positive_number(where: str, key: str, value: object, unit: str) -> float:
    if not _is_number(value) or value <= 0:
        raise _bad(where, key, f"a positive number ({unit})", value)
    return float(value)


def _integer(where: str, key: str, value: object, minimum: int) -> int:
    if not _is_int(value) or value < minimum:
        raise _bad(where, key, "a positive integer" if minimum > 0 else "a non-negative integer", value)
    return value


def _dsp_per_mac(where: str, value: object) -> FrozenMap:
    if not isinstance(value, dict):
        raise _bad(where, "dsp_per_mac", "a mapping of precision to DSPs per MAC, e.g. {fixed16: 1}", value)
    merged = dict(DEFAULT_DSP_PER_MAC)
    for precision, count in value.items():
        if not isinstance(precision, str) or not _NAME_RE.match(precision):
            raise FnasError(
                f"{where}: field 'dsp_per_mac' has a bad precision name {_show(precision)}; "
                f"use letters and digits, e.g. fixed16, float32"
            )
        merged[precision] = _integer(where, f"dsp_per_mac.{precision}", count, minimum=1)
    return FrozenMap(merged)


def _usable(where: str, value: object) -> Usable:
    if not isinstance(value, dict):
        raise _bad(where, "usable", "a mapping of resource to fraction, e.g. {dsp: 0.9, lut: 0.8}", value)
    defaults = Usable()
    out: dict[str, float] = {}
    for key in value:
        if key not in RESOURCE_KINDS:
            raise FnasError(f"{where}: unknown field 'usable.{key}'; accepted: {', '.join(RESOURCE_KINDS)}")
    for kind in RESOURCE_KINDS:
        fraction = value.get(kind, getattr(defaults, kind))
        if not _is_number(fraction) or not 0 < fraction <= 1:
            raise _bad(where, f"usable.{kind}", "a fraction in (0, 1]", fraction)
        out[kind] = float(fraction)
    return Usable(**out)


def _aliases(where: str, value: object, name: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _bad(where, "aliases", "a list of board names, e.g. [pynq-z1, pynq-z2]", value)
    for alias in value:
        _name(where, "aliases", alias)
    lowered = (alias.lower() for alias in value)
    return tuple(dict.fromkeys(a for a in lowered if a != name.lower()))


# --- step 3: build ----------------------------------------------------------------------------


def _build(checked: Mapping[str, Any], path: Path) -> Board:
    return Board(**checked, source=path.resolve())


# --- helpers ----------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _floor_fraction(count: int, fraction: float) -> int:
    # Exact decimal arithmetic: 0.57 * 100 is 56.99999... in binary floating point.
    return math.floor(Fraction(repr(fraction)) * count)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _bad(where: str, key: str, what: str, value: object) -> FnasError:
    return FnasError(f"{where}: field '{key}' must be {what}, got {_show(value)}")


def _looks_like_path(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or "/" in text or os.sep in text


def _display(path: Path) -> str:
    """``path`` relative to the working folder when it lies below it (``boards/pynq.yaml``)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)
