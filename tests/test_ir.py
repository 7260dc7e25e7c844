"""Shape inference, MAC and parameter counts, and the architecture YAML form."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fnas_hls.errors import FnasError
from fnas_hls.network.arch import load_network_yaml, network_to_yaml, parse_network_yaml
from fnas_hls.network.ir import Conv, Network, Shape, same_padding

EXAMPLE = """
input: [1, 28, 28]
layers:
  - {type: conv, out: 18, kernel: 5, stride: 1, padding: same, relu: true}
  - {type: maxpool, kernel: 2, stride: 2}
  - {type: conv, out: 36, kernel: 3, stride: 1, padding: 1, groups: 2, relu: true}
  - {type: gap}
  - {type: fc, out: 10}
"""


def torch_twin() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 18, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(18, 36, 3, padding=1, groups=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(36, 10),
    )


def test_example_shapes_macs_params_match_torch():
    net = parse_network_yaml(EXAMPLE)
    shapes = [str(li.out_shape) for li in net]
    assert shapes == ["18x28x28", "18x14x14", "36x14x14", "36x1x1", "10x1x1"]
    model = torch_twin()
    assert net.params == sum(p.numel() for p in model.parameters())
    # MACs by hand: conv1 18*28*28*1*25, conv2 36*14*14*9*9, fc 36*10
    assert net.macs == 18 * 28 * 28 * 25 + 36 * 14 * 14 * 9 * 9 + 360
    y = model(torch.zeros(1, 1, 28, 28))
    assert tuple(y.shape) == (1, 10)
    assert [li.name for li in net] == ["conv1", "pool1", "conv2", "gap1", "fc1"]
    assert net.is_chain


@pytest.mark.parametrize(
    ("size", "k", "s"), [(28, 5, 1), (28, 4, 1), (227, 11, 4), (13, 3, 2), (7, 7, 2), (5, 1, 3)]
)
@pytest.mark.filterwarnings("ignore:Using padding=.same.")
def test_same_padding_gives_ceil_outputs_like_torch_same(size, k, s):
    pads = same_padding((size, size), (k, k), (s, s))
    conv = Conv("c", 2, (k, k), (s, s), pads)
    assert conv.out_shape(Shape(1, size, size)).h == -(-size // s)
    if s == 1:  # torch's padding='same' (stride 1 only) pads the extra element at the end too
        t = nn.Conv2d(1, 2, k, padding="same")
        assert t(torch.zeros(1, 1, size, size)).shape[-1] == size
    assert pads[2] - pads[0] in (0, 1)


def test_padding_forms_and_strides():
    net = parse_network_yaml("""
input: [3, 17, 20]
layers:
  - {type: conv, out: 4, kernel: [3, 5], stride: [2, 1], padding: [1, 2, 0, 3]}
  - {type: avgpool, kernel: 3, stride: 2, padding: valid}
  - {type: flatten}
  - {type: fc, out: 3, bias: false}
""")
    c = net.info[0]
    # rows: (17 + 1 + 0 - 3) // 2 + 1 = 8; cols: (20 + 2 + 3 - 5) // 1 + 1 = 21
    assert c.out_shape == Shape(4, 8, 21)
    assert net.info[1].out_shape == Shape(4, 3, 10)
    assert net.info[2].out_shape == Shape(120, 1, 1)
    assert net.info[3].params == 360
    t = nn.Conv2d(3, 4, (3, 5), stride=(2, 1))
    x = nn.functional.pad(torch.zeros(1, 3, 17, 20), (2, 3, 1, 0))
    assert tuple(t(x).shape[1:]) == (4, 8, 21)


def test_yaml_round_trip_is_identity():
    net = parse_network_yaml(EXAMPLE)
    again = parse_network_yaml(network_to_yaml(net))
    assert again == net
    assert [li.out_shape for li in again] == [li.out_shape for li in net]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("input: [1, 28, 28]\nlayers:\n  - {type: conv, out: 4, kernel: 3\n", "malformed YAML"),
        ("input: [1, 28]\nlayers: [{type: gap}]\n", "field 'input' must be [channels, height, width]"),
        ("input: [1, 8, 8]\nlayers:\n  - {type: conv, out: 4}\n", "missing field 'kernel'"),
        (
            "input: [1, 8, 8]\nlayers:\n  - {type: conv, out: 4, kernel: 3, dilation: 2}\n",
            "unknown field 'dilation'",
        ),
        ("input: [1, 8, 8]\nlayers:\n  - {type: lstm}\n", "unknown layer type 'lstm'"),
        (
            "input: [1, 8, 8]\nlayers:\n  - {type: conv, out: -4, kernel: 3}\n",
            "field 'out' must be an integer >= 1",
        ),
        (
            "input: [1, 8, 8]\nlayers:\n  - {type: conv, out: 4, kernel: 3, padding: half}\n",
            "field 'padding'",
        ),
        ("input: [1, 8, 8]\nlayers:\n  - {type: conv, out: 4, kernel: 9}\n", "does not fit"),
        (
            "input: [3, 8, 8]\nlayers:\n  - {type: conv, out: 4, kernel: 3, groups: 2}\n",
            "groups=2 must divide",
        ),
        (
            "input: [1, 8, 8]\nlayers:\n  - {type: conv, out: 4, kernel: 3, relu: yes please}\n",
            "true or false",
        ),
        (
            "input: [1, 8, 8]\nlayers:\n  - {type: conv, name: a, out: 4, kernel: 3}\n"
            "  - {type: conv, name: a, out: 4, kernel: 3}\n",
            "used twice",
        ),
        ("input: [1, 8, 8]\nlayers: []\n", "non-empty list"),
        ("- 1\n- 2\n", "a mapping"),
    ],
)
def test_bad_architecture_yaml_gives_one_clear_line(tmp_path, text, message):
    path = tmp_path / "arch.yaml"
    path.write_text(text)
    with pytest.raises(FnasError) as err:
        load_network_yaml(path)
    msg = str(err.value)
    assert message in msg
    assert "\n" not in msg
    assert str(path) in msg


def test_yaml_errors_name_the_line(tmp_path):
    path = tmp_path / "arch.yaml"
    path.write_text("input: [1, 8, 8]\nlayers:\n  - {type: gap}\n  - {type: conv, out: 0, kernel: 3}\n")
    with pytest.raises(FnasError, match=r"arch\.yaml:4: layers\[1\] \(conv\): field 'out'"):
        load_network_yaml(path)
    path.write_text("input: [1, 8, 8]\nlayers:\n  - {type: gap\n")
    with pytest.raises(FnasError, match=r"arch\.yaml:4: malformed YAML"):
        load_network_yaml(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FnasError, match="not found"):
        load_network_yaml(tmp_path / "nope.yaml")


def test_network_rejects_unknown_input_reference():
    with pytest.raises(FnasError, match="reads 'ghost'"):
        Network(Shape(1, 4, 4), (Conv("c", 2, (1, 1), inputs=("ghost",)),))
