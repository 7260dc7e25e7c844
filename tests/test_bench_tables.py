"""The tables bench's statistics and its table, on made-up figures (the bench itself runs for an hour)."""

from __future__ import annotations

import math

import pytest

from bench.tables_bench import _interval, _spread, tables_table


def test_interval_is_a_t_interval_around_the_mean():
    d = _interval([1.0, 2.0, 3.0, 4.0])
    # t(0.975, 3) = 3.182; sd = 1.291; half width = 3.182 * 1.291 / 2
    assert d["mean"] == 2.5 and d["hi"] - d["mean"] == pytest.approx(3.182 * 1.2910 / 2, rel=1e-3)
    assert d["lo"] == pytest.approx(2 * 2.5 - d["hi"])
    assert math.isnan(_interval([1.0])["hi"])


def test_spread_quantiles():
    s = _spread([float(x) for x in range(11)])
    assert (s["median"], s["p10"], s["p90"], s["n"]) == (5.0, 1.0, 9.0, 11)
    assert _spread([])["n"] == 0


def test_table_renders_every_spec_and_strategy():
    iv = {"mean": 0.5, "lo": 0.3, "hi": 0.7, "n": 10}
    strat = {"regret": iv, "regret_short": iv, "no_winner": 0, "cost": 12.0, "episodes": 300.0}
    spec = {
        "spec_ms": 2.0, "best_long": 91.0, "in_spec": 500, "strategies": {"rl": strat, "random": strat},
        "rl_vs_random_p": 0.03, "rl_better_seeds": 6, "rl_worse_seeds": 2,
    }  # fmt: skip
    sp = {"median": 3.0, "p10": 2.0, "p90": 4.0, "mean": 3.0, "n": 10}
    anb = {
        "spec_ms": 30.0,
        "unaware_latency_over_spec": sp,
        "accuracy_given_up": sp,
        "unaware_time_over_aware": sp,
    }
    r = {
        "nb201": {"fit": 4000, "cells": 15625, "seeds": 10, "specs": {"10%": spec, "25%": spec}},
        "anb": {"rows": 200, "episodes": 100, "seeds": 10, "specs": {"10%": anb}},
    }
    text = tables_table(r)
    assert text.count("| rl |") == 2 and "p = 0.03" in text and "3.00 [2.00, 4.00]" in text
