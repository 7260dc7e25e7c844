"""The ``shared`` style's model: every layer's cost on one engine for the whole board.

The engine itself, its loops, ports and resources, is ``model.shared_engine`` (Zhang et al.,
FPGA'15; its docstring draws the loop nest of ``templates/shared/engine.cpp.j2``). Here: which
residual adds the engine's store computes (``fused_adds``), which maps the engine keeps in rows of
whole beats (``padded_maps``), the units beside the engine (the add and copy units that two-input
adds and concats call, ``fnas_add2`` and ``fnas_copy``; pooling on the beat unit of
``model.shared_pool``; the rest on the sequential style's per-layer units), and the cost of every
layer (``shared_layer_costs``) that ``analysis`` asks for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import replace

from fnas_hls.boards import Board
from fnas_hls.model import hls_rules as rules
from fnas_hls.model import resource_model as rm

#: The engine's C name (every conv and fully connected layer calls it).
from fnas_hls.model import shared_pool
from fnas_hls.model.costs import FunctionCost, LayerCost, LoopCost
from fnas_hls.model.geometry import ConvGeometry, act_kind, is_tiled
from fnas_hls.model.sequential import CONCAT_DEPTH, TOP_RESOURCES, add_cost, concat_cost, layer_cost
from fnas_hls.model.shared_engine import Engine, engine_layer_cost
from fnas_hls.model.shared_fabric import LOAD_PORTS, whole_beats
from fnas_hls.model.shared_views import is_pointwise
from fnas_hls.network.ir import Add, Concat, Conv, Flatten, GlobalAvgPool, LayerInfo, map_roots
from fnas_hls.precision import Precision
from fnas_hls.resources import Resources

#: The units residual adds of two and of three inputs (NAS-Bench-201's node sums) and every concat's
#: copies call, one instance each: by the add's inputs.
ADD_UNITS = {2: "fnas_add2", 3: "fnas_add3"}
ADD_UNIT = ADD_UNITS[2]
COPY_UNIT = "fnas_copy"


def _uses_add_unit(li: LayerInfo) -> bool:
    return isinstance(li.layer, Add) and len(li.sources) in ADD_UNITS


def add_unit(li: LayerInfo) -> str:
    """The add unit a residual add of its inputs calls (``_uses_add_unit``)."""
    return ADD_UNITS[len(li.sources)]


def fused_adds(infos: list[LayerInfo]) -> dict[str, str]:
    """The two-input residual adds the engine's store computes, each by the name of the conv (or
    fully connected) layer whose output it takes: the layer just before the add, on the engine,
    read by the add alone; the add's activation none or ReLU; its other input a map the engine
    reads beside its store through a port of its own (not the network's input, not a flatten).
    The store then reads that map's word for each word it writes, adds it as ``fnas_add2`` would,
    and writes the add's output: one pass over the map instead of three (ResNet-50's adds were
    30% of its time on the add unit, two reads through one port a word)."""
    readers = Counter(s for li in infos for s in li.sources)
    by_name = {li.name: li for li in infos}
    out = {}
    for prev, li in zip(infos, infos[1:], strict=False):
        two = _uses_add_unit(li) and len(li.sources) == 2
        if not (two and is_tiled(prev) and prev.name in li.sources) or act_kind(li.layer):
            continue
        if readers[prev.name] != 1:
            continue
        other = next(s for s in li.sources if s != prev.name)
        if other in by_name and not isinstance(by_name[other].layer, Flatten):
            out[li.name] = prev.name
    return out


def written_maps(infos: list[LayerInfo]) -> dict[str, str]:
    """For each conv and fully connected layer, the map its store writes: its own, or that of the
    add its store computes (``fused_adds``)."""
    into = {conv: add for add, conv in fused_adds(infos).items()}
    return {li.name: into.get(li.name, li.name) for li in infos if is_tiled(li)}


def stores_beats(infos: list[LayerInfo], padded: frozenset[str]) -> dict[str, bool]:
    """For each conv and fully connected layer, whether the engine stores its output in whole beats:
    whether the map it writes (``written_maps``) is padded."""
    return {conv: out in padded for conv, out in written_maps(infos).items()}


def padded_maps(
    infos: list[LayerInfo], beat: int, tc_pins: Mapping[str, object] | None = None
) -> frozenset[str]:
    """The maps the engine keeps in DDR in rows of whole beats (``beat`` words): each row padded to
    a multiple of ``beat`` words, so that the engine's store writes whole beats (``STORE_B``). A map
    is padded where the engine writes it (a conv's output, or an add its store computes) and reads
    it alone: every reader a conv or a fully connected layer that reads it as channels of its map
    (not as one vector, not through a flatten), a global average pooling or a pooling on the beat
    unit (``model.shared_pool``; both read rows IW words apart), or an add whose other input it is,
    computed by the store of a conv whose own output is padded too (the skip map's beats then align
    with the output's); never the network's output. A max pooling's output is padded too where its
    input is and its readers allow (``model.shared_pool.takes_vector_pool``: it then writes a beat of
    outputs an iteration), where the engine writes some padded map (its beat store ports).
    ``tc_pins``: each layer's pinned Tc, where it has one; a layer pinned to a Tc that is not a
    multiple of ``beat`` (and less than its map) keeps an unpadded output, since its stores would
    not be whole beats."""
    if beat <= 1:
        return frozenset()
    tc_pins = tc_pins or {}
    fused = fused_adds(infos)
    root = map_roots(infos)
    by_name = {li.name: li for li in infos}
    written = {out: by_name[conv] for conv, out in written_maps(infos).items()}  # map -> its conv
    out = set(written) - {root[infos[-1].name]}
    for name, conv in written.items():
        pin = tc_pins.get(conv.name)
        if pin is not None and pin != "full" and int(pin) % beat and int(pin) < conv.out_shape.w:
            out.discard(name)
    plain = set()  # the maps some reader needs plain
    for li in infos:
        for s in li.sources:
            if li.name in fused:
                continue  # its conv's output, or the other input its conv's store reads (below)
            reads_rows = isinstance(li.layer, GlobalAvgPool) or shared_pool.takes_beat_pool(li, beat)
            if reads_rows and root[s] == s:
                continue  # the GAP unit and the beat pooling unit read a padded map's rows, IW words apart
            g = ConvGeometry.of(li) if is_tiled(li) else None
            if g is None or root[s] != s or g.groups * g.N != li.in_shape.c:
                plain.add(root[s])  # read by a unit, through a flatten, or as a vector (a linear layer)
    out -= plain
    # a max pooling whose input is padded writes its output in whole beats too (shared_pool.POOL_V),
    # where the engine stores some map in whole beats (the pool writes through its beat store ports)
    pools = {
        li.name: root[li.sources[0]]
        for li in infos
        if shared_pool.takes_vector_pool(li, beat)
        and li.name not in plain
        and li.name != root[infos[-1].name]
    }
    if not out:
        pools = {}
    skip_map = {add: root[next(s for s in by_name[add].sources if s != conv)] for add, conv in fused.items()}
    banned: set[str] = set()  # pools whose output left the set: never added again (so this ends)
    changed = True
    while changed:  # a pool's output padded where its input is; an add's output and its other input
        changed = False  # padded both, or neither
        for pool, src in pools.items():  # in the network's order: a chain of pools settles in one pass
            want = src in out and pool not in banned
            if want and pool not in out:
                out.add(pool)
                changed = True
            elif not want and pool in out:
                out.discard(pool)
                banned.add(pool)
                changed = True
        for add, other in skip_map.items():
            if (add in out) != (other in out):
                banned |= {add, other} & set(pools)
                out -= {add, other}
                changed = True
    return frozenset(out)


def flat_layers(
    infos: list[LayerInfo], padded: frozenset[str], beat: int, keep_rows: Collection[str] = ()
) -> dict[str, int]:
    """The pointwise layers (``is_pointwise``) the engine runs as one row, each with the words a row
    of its maps takes in DDR (``engine_geometry``'s ``row_words``): W, or W rounded up to whole
    ``beat``-word beats where its maps are padded (``padded``). Its input and the map its store
    writes must be padded alike: pixel p of the one row is then word p of both, pad words included
    (what lands in the output's pad words, their products or, where COMPUTE skips them,
    ``model.shared_views.compute_view``, stale accumulators, never reaches a pixel: the engine's loads
    of other layers and the pooling units check each word's column against W, and the layers run as
    one row and the fused adds' skip reads take a pad word only into a pad word). ``keep_rows``: layers
    whose Tr or Tc the user pinned."""
    root = map_roots(infos)
    written = written_maps(infos)
    out = {}
    for li in infos:
        if not is_pointwise(li) or li.name in keep_rows:
            continue
        padded_in = root.get(li.sources[0], li.sources[0]) in padded
        if padded_in == (written[li.name] in padded):
            w = li.out_shape.w
            out[li.name] = whole_beats(w, beat) if padded_in else w
    return out


def aligned_layers(
    infos: list[LayerInfo], padded: frozenset[str], flat: Mapping[str, int], beat: int
) -> frozenset[str]:
    """The conv layers whose every window row begins at a beat in DDR wherever a column tile begins
    at a multiple of ``beat`` words (``engine_terms``'s ``aligned``): no left padding, and the rows
    of its input whole beats (a map kept ``padded``, or W a multiple of ``beat``; every map begins
    at a beat), or, run as one row (``flat``), each channel whole beats. LOAD_IN then reads a window
    row's chunks alone, not one beat more (the beat before, which a row at another offset needs to
    select its first chunk): a 7-column row of whole beats loaded 2 beats for its 7 words."""
    root = map_roots(infos)
    out = set()
    for li in infos:
        layer = li.layer
        if not (is_tiled(li) and isinstance(layer, Conv)) or layer.padding[1]:
            continue
        x = li.in_shape
        words = whole_beats(x.w, beat) if root[li.sources[0]] in padded else x.w
        if words % beat == 0 or (li.name in flat and (x.h * words) % beat == 0):
            out.add(li.name)
    return frozenset(out)


def on_merge_unit(li: LayerInfo) -> bool:
    """A layer the shared units run: an add of two or three inputs (``fnas_add2``, ``fnas_add3``) or
    a concat (``fnas_copy``)."""
    return _uses_add_unit(li) or isinstance(li.layer, Concat)


def fused_add_cost(li: LayerInfo, conv: str) -> LayerCost:
    """An add the engine's store computes (``fused_adds``): no call of its own."""
    return LayerCost(li.name, li.layer.op, None, 0, 0, None, f"fused into {conv}", Resources(), (), 0, 0)


def shared_merge_cost(
    li: LayerInfo, board: Board, prec: Precision, clock_mhz: float | None = None
) -> LayerCost:
    """An add is a call of its add unit, ``fnas_add2`` or ``fnas_add3`` (the sequential style's ADD
    loop, II its inputs, run-time arguments); a concat is one call of ``fnas_copy`` per input, which
    the top runs in turn (the layer's share of the top is their blocks, less the one block the top
    counts per layer). The units' resources are counted once for the design (``merge_units``)."""
    if _uses_add_unit(li):  # (its ADD depth is its own activation's, not the unit's deepest case)
        return replace(add_cost(li, add_unit(li), board, prec, clock_mhz), resources=Resources())
    calls, functions = [], []
    for x in li.in_shapes:
        loop = rules.pipelined_loop(x.size, 1, CONCAT_DEPTH)
        calls.append(rules.function_latency(loop))
        functions.append(
            FunctionCost(COPY_UNIT, calls[-1], 1, (LoopCost("COPY", x.size, loop, 1, CONCAT_DEPTH),))
        )
    cycles = sum(rules.sequential_block(c) for c in calls) - rules.SEQUENTIAL_BLOCK_OVERHEAD
    cost = concat_cost(li, li.name, board, prec, clock_mhz)
    return replace(cost, cycles=cycles, bound="memory", resources=Resources(), functions=tuple(functions))


def merge_units(infos: list[LayerInfo], prec: Precision, board: Board) -> Resources:
    """The add and copy units, once each where the network uses them (an add unit where an add of
    its inputs is left that the engine's store does not compute)."""
    fused = fused_adds(infos)
    infos = [li for li in infos if li.name not in fused]
    unit = Resources(
        lut=rm.LUT_PER_LAYER + 2 * rm.LUT_PER_AXI_PORT, ff=rm.FF_PER_LAYER + 2 * rm.FF_PER_AXI_PORT
    )
    total = Resources()
    for name in sorted({add_unit(li) for li in infos if _uses_add_unit(li)}):
        adds = [li for li in infos if _uses_add_unit(li) and add_unit(li) == name]
        kinds = tuple(sorted({act_kind(li.layer) for li in adds} - {""}))
        act_dsp, act_bram = rm.act_resources(kinds, prec.name)  # the unit's switch over them
        # a float sum of n inputs is n - 1 adders
        dsp = (rm.DSP_PER_FLOAT_ADD * (len(adds[0].sources) - 1) if prec.is_float else 0) + act_dsp
        total = total + unit + Resources(dsp=dsp, bram18k=act_bram)
    if any(isinstance(li.layer, Concat) for li in infos):
        total = total + unit
    return total


def unit_cost(
    li: LayerInfo,
    cname: str,
    board: Board,
    prec: Precision,
    clock_mhz: float | None = None,
    beat: int = 0,
    beats_out: bool = False,
    gaps: frozenset[str] = frozenset(),
    ports: int = LOAD_PORTS,
) -> LayerCost:
    """A layer on a unit of its own: pooling whose window fits a beat of the engine's ``beat``
    words, and a GAP whose rows do, on the beat unit (``model.shared_pool``; 0: no engine, no beat
    ports), the rest (other pooling and GAP, adds of more inputs) as the sequential style's units,
    or free (flatten, host); ``beats_out``: its output is kept in whole beats (a max pooling then
    writes a beat of outputs an iteration, ``shared_pool.POOL_V``); ``ports``: the engine's load ports,
    which the beat unit reads through."""
    if beats_out and shared_pool.takes_vector_pool(li, beat):
        return shared_pool.vector_pool_cost(li, cname, board, prec, clock_mhz, ports)
    if shared_pool.takes_beat_pool(li, beat, gaps):
        return shared_pool.beat_pool_cost(li, cname, board, prec, clock_mhz, ports)
    return layer_cost(li, cname, None, board, prec, clock_mhz)


def unit_cycles(
    infos: list[LayerInfo],
    board: Board,
    prec: Precision,
    beat: int,
    padded: frozenset[str],
    ports: int = LOAD_PORTS,
    gaps: frozenset[str] | None = None,
) -> int:
    """The cycles of the layers on units of their own (``unit_cost``: pooling, GAP, adds of more
    inputs) with the maps ``padded`` and the engine's ``ports`` load ports: what the layout changes
    of a design's latency beside the engine's (a max pooling writes beats only where its output is
    padded). ``gaps``: ``shared_pool.beat_gaps``, which depends on neither (computed where not given)."""
    if gaps is None:
        gaps = shared_pool.beat_gaps(infos, board, prec, beat)
    return sum(
        unit_cost(
            li, li.name, board, prec, beat=beat, beats_out=li.name in padded, gaps=gaps, ports=ports
        ).cycles
        for li in infos
        if not (is_tiled(li) or on_merge_unit(li))
    )


def untiled_resources(infos: list[LayerInfo], prec: Precision, board: Board) -> Resources:
    """What a shared design spends beside its engine: the top, the merge units (once), and the
    per-layer units of pooling, GAP and adds of more than two inputs."""
    total = TOP_RESOURCES + merge_units(infos, prec, board)
    beat = board.axi_words_per_cycle(prec.bits) if any(is_tiled(li) for li in infos) else 0
    gaps = shared_pool.beat_gaps(infos, board, prec, beat)
    for li in infos:
        if not (is_tiled(li) or on_merge_unit(li)):
            res = unit_cost(li, li.name, board, prec, beat=beat, gaps=gaps).resources
            if shared_pool.takes_vector_pool(li, beat):  # each resource the more of the two loops'
                vec = shared_pool.vector_pool_resources(li, prec, beat)
                res = Resources(*(max(getattr(res, f), getattr(vec, f)) for f in res.__dataclass_fields__))
            total = total + res
    return total


def shared_layer_costs(
    infos: list[LayerInfo],
    cnames: dict[str, str],
    e: Engine | None,
    tiles: dict[str, tuple[int, int]],
    board: Board,
    prec: Precision,
    clock_mhz: float | None = None,
    padded: frozenset[str] = frozenset(),
    flat: Mapping[str, int] | None = None,
    stacks: Mapping[str, int] | None = None,
    folds: Collection[str] = frozenset(),
    aligned: Collection[str] = frozenset(),
) -> tuple[LayerCost, ...]:
    """Every layer's cost: the tiled ones on the engine at their (Tr, Tc), two-input adds and
    concats on the shared units, the rest on units of their own (``unit_cost``). ``padded``: the
    maps stored in whole beats (``padded_maps``); ``flat``: the layers run as one row, with
    the words of a row of their maps (``flat_layers``); ``stacks``: those of them that stack their
    input channels as kernel rows (``model.shared_views.engine_geometry``), with their stacks;
    ``folds``: the layers whose kernel rows fold onto their input channels; ``aligned``: those whose
    window rows begin at beats (``aligned_layers``)."""
    flat, stacks = flat or {}, stacks or {}
    beat = e.beat_words if e else 0
    ports = e.load_ports if e else LOAD_PORTS  # the units read through the engine's load ports
    gaps = shared_pool.beat_gaps(infos, board, prec, beat)  # (once: it weighs every GAP of the network)
    out = []
    fused = fused_adds(infos)
    into = set(fused.values())
    beats = stores_beats(infos, padded)
    for li in infos:
        if is_tiled(li):
            t = tiles[li.name]
            out.append(
                engine_layer_cost(
                    li,
                    e,
                    *t,
                    board,
                    prec,
                    clock_mhz,
                    li.name in into,
                    beats[li.name],
                    flat.get(li.name, 0),
                    stacks.get(li.name, 1),
                    li.name in folds,
                    li.name in aligned,
                )  # fmt: skip
            )
        elif li.name in fused:
            out.append(fused_add_cost(li, fused[li.name]))
        elif on_merge_unit(li):
            out.append(shared_merge_cost(li, board, prec, clock_mhz))
        else:
            out.append(
                unit_cost(li, cnames[li.name], board, prec, clock_mhz, beat, li.name in padded, gaps, ports)
            )
    return tuple(out)
