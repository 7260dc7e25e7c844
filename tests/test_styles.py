"""The style objects: what the toolkit asks of a style, and that nothing outside ``fnas_hls/styles``
asks a style's name instead."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fnas_hls.boards import load_board
from fnas_hls.errors import FnasError
from fnas_hls.network.arch import parse_network_yaml
from fnas_hls.network.ir import Conv, HostOp, Network, Shape
from fnas_hls.styles import AUTO_FALLBACK, AUTO_ORDER, STYLE_CHOICES, STYLES, analyze, get_style

ROOT = Path(__file__).resolve().parent.parent
NET = """
name: small
input: [1, 8, 8]
layers:
  - {type: conv, name: c1, out: 4, kernel: 3, padding: 1, relu: true}
  - {type: maxpool, name: p1, kernel: 2}
  - {type: conv, name: c2, out: 8, kernel: 3, relu: true}
"""


def test_every_style_has_its_templates_and_a_name_of_its_own():
    assert list(STYLES) == ["sequential", "dataflow", "shared"] and STYLE_CHOICES[-1] == "auto"
    assert sorted(AUTO_ORDER) == sorted(STYLES) and AUTO_FALLBACK in STYLES
    for name, style in STYLES.items():
        assert style.name == name and get_style(name) is style
        folder = ROOT / "templates" / name
        for t in ("top.h.j2", "top.cpp.j2", "readme_layers.md.j2", "readme_src.md.j2"):
            assert (folder / t).is_file(), f"{name}: {t}"
        assert (ROOT / "templates" / style.unit_templates / "conv_layer.cpp.j2").is_file()


def test_an_unknown_style_is_one_line():
    with pytest.raises(FnasError, match="unknown style 'systolic'; accepted: sequential, dataflow, shared"):
        get_style("systolic")
    with pytest.raises(FnasError, match="accepted: sequential, dataflow, shared, auto"):
        analyze(parse_network_yaml(NET), load_board("pynq"), style="systolic")


def test_auto_reports_every_style_in_order_and_returns_the_fastest_that_fits():
    a = analyze(parse_network_yaml(NET), load_board("pynq"), style="auto")
    assert [s.style for s in a.styles] == list(STYLES)
    built = [s for s in a.styles if s.latency_cycles is not None and s.fits]
    assert a.latency_cycles == min(s.latency_cycles for s in built)
    for s in a.styles:
        if s.latency_cycles is not None:  # each style analyzed alone gives what auto saw
            alone = analyze(parse_network_yaml(NET), load_board("pynq"), style=s.style)
            assert (alone.latency_cycles, alone.fits) == (s.latency_cycles, s.fits)


def test_a_style_that_cannot_build_a_network_says_why_and_auto_goes_on():
    net = Network(
        Shape(1, 8, 8),
        (Conv("c1", 4, (3, 3), padding=(1, 1, 1, 1), relu=True), HostOp("h", "Erf", Shape(4, 8, 8))),
        "hosted",
    )
    why = get_style("dataflow").unsupported(net)
    assert "layer 'h' (Erf) runs on the host" in why
    assert all(not STYLES[n].unsupported(net) for n in ("sequential", "shared"))
    with pytest.raises(FnasError, match=r"--style dataflow: layer 'h' \(Erf\) runs on the host"):
        analyze(net, load_board("pynq"), style="dataflow")
    a = analyze(net, load_board("pynq"), style="auto")
    df = next(s for s in a.styles if s.style == "dataflow")
    assert df.latency_cycles is None and not df.fits and "runs on the host" in df.why
    assert a.style in ("sequential", "shared")


# A comparison of a style value with a style's name, in Python or in a template.
_NAME_TEST = re.compile(
    r"""(==|!=)\s*["'](sequential|dataflow|shared)["']|["'](sequential|dataflow|shared)["']\s*(==|!=)"""
)


def test_no_module_outside_the_styles_tests_a_styles_name():
    """A new style adds a module to ``fnas_hls/styles`` (and a template folder); the rest of the code
    asks the style object, so no branch elsewhere names a style."""
    offenders = []
    files = [*(ROOT / "fnas_hls").rglob("*.py"), *(ROOT / "templates").rglob("*.j2")]
    for path in files:
        if (ROOT / "fnas_hls" / "styles") in path.parents:
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _NAME_TEST.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
