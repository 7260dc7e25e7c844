"""``fnas-hls search --space S --board B``: the hardware-aware architecture search (FNAS)."""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import torch

from fnas_hls.boards import load_board
from fnas_hls.errors import FnasError
from fnas_hls.precision import PRECISIONS
from fnas_hls.search.datasets import describe
from fnas_hls.search.final import FinalProgress
from fnas_hls.search.loop import Progress
from fnas_hls.search.run import run_search
from fnas_hls.search.rundir import FINAL_DIR, FINAL_LOG, RunConfig, default_run_folder, load_run_config
from fnas_hls.search.settings import REWARDS, STRATEGIES, FinalSettings
from fnas_hls.search.space import SEARCHED, load_space, resolve_space
from fnas_hls.search.trainer import DEVICES, resolve_device
from fnas_hls.styles import STYLE_CHOICES
from fnas_hls.tabular.cli import run_table
from fnas_hls.tabular.spaces import is_tabular

DEFAULT_SPACE = "digits"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "search",
        help="hardware-aware architecture search: prune children that break the latency spec, train the rest",
        description="Sample CNNs from a search space with an LSTM controller (REINFORCE) or at random, "
        "predict each one's latency on the board, prune those that break the spec, train the rest, and "
        "leave the best one (weights, ONNX, HLS project) and a report in the run folder.",
    )
    p.add_argument("--space", default=None, help=f"search space name or YAML (default: {DEFAULT_SPACE})")
    p.add_argument("--board", default=None, help="board name or YAML (default: the space's)")
    p.add_argument("--spec-ms", type=float, default=None, help="latency spec in ms (default: the space's)")
    p.add_argument("--episodes", type=int, default=None, help="children to sample (default: the space's)")
    p.add_argument(
        "--epochs", type=int, default=None, help="training epochs per child (default: the space's)"
    )
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=None,
        help="rl (FNAS's controller), random (with pruning) or evolution (regularized, with pruning)",
    )
    p.add_argument(
        "--evaluate",
        choices=("train", "table"),
        default=None,
        help="train each child (the spaces with a dataset) or look its accuracy up in a public table "
        "(nb201, accel-nasbench: a search in seconds); default: what the space has",
    )
    p.add_argument(
        "--evaluations",
        type=int,
        default=None,
        help="table search: stop after this many distinct children evaluated (default: the space's)",
    )
    p.add_argument(
        "--screen",
        type=int,
        default=None,
        help="table search: evaluate each child as the best of N new in-spec proposals by a cheap accuracy "
        "predictor fitted to the children evaluated so far, after the first 10 (0: none; default: the "
        "space's)",
    )
    p.add_argument(
        "--final-k",
        type=int,
        default=None,
        help="retrain the best K in-spec children in full and take the best of them on validation: trained "
        "from scratch on the whole training split (default: the space's final.k), or for a table search "
        "looked up at the long fidelity (NAS-Bench-201's 200 epochs)",
    )
    p.add_argument(
        "--final-epochs",
        type=int,
        default=None,
        help="final training: at most this many epochs per child (default: the space's final.epochs)",
    )
    p.add_argument(
        "--qat-epochs",
        type=int,
        default=None,
        help="after final training, this many epochs of quantization-aware training in the design's "
        "fixed-point precision, bit-exact with the reference model (0: none; default: the space's "
        "final.qat_epochs)",
    )
    p.add_argument(
        "--reward",
        choices=REWARDS,
        default=None,
        help="fnas (the paper's flat penalty), distance (the penalty grows with how far over the spec a "
        "child is), soft (MnasNet); default: the space's",
    )
    p.add_argument(
        "--hw-unaware",
        action="store_true",
        help="accuracy-only NAS: train every child, check latency only afterwards",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument(
        "--style",
        choices=STYLE_CHOICES,
        default=None,
        help="accelerator style of every child; auto (default) co-explores it: a child's latency is "
        "that of its fastest style that fits",
    )
    p.add_argument("--precision", choices=sorted(PRECISIONS), default=None, help="default: the space's")
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder of the dataset's files (mnist, fashion-mnist: the four idx files; cifar10: the python "
        "batches); default: data/<dataset>/, and for fashion-mnist then /usr/share/datasets/fashion-mnist/",
    )
    p.add_argument(
        "--device",
        choices=DEVICES,
        default=None,
        help="where children train: auto (default) takes a CUDA device when torch sees one, else the CPU",
    )
    p.add_argument(
        "--train-subset",
        type=int,
        default=None,
        help="train each child on this many (seeded) training images (default: the space's)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help="children sampled per controller update, trained at once (default: the space's, else 1)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="train up to N children at a time on a local Ray instance (needs: pip install 'fnas-hls[ray]')",
    )
    p.add_argument(
        "--ray", default=None, metavar="ADDRESS", help="train the children on the Ray cluster at ADDRESS"
    )
    p.add_argument("--out", default=None, help="run folder (default: runs/<space>-<board>[-...])")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--force", action="store_true", help="start over in an --out that holds something")
    p.add_argument(
        "--no-hls", action="store_true", help="skip the HLS project and C simulation of the winner"
    )
    p.set_defaults(handler=run)


def _default_out(cfg: RunConfig) -> Path:
    return default_run_folder(cfg.space.name, cfg.board.name, cfg.search.strategy, cfg.hw_aware, cfg.seed)


def _check_positive(args: argparse.Namespace) -> None:
    if args.spec_ms is not None and args.spec_ms <= 0:
        raise FnasError(f"--spec-ms must be positive, got {args.spec_ms:g}")
    for flag in ("episodes", "epochs", "train_subset", "batch", "workers"):
        v = getattr(args, flag)
        if v is not None and v < 1:
            raise FnasError(f"--{flag.replace('_', '-')} must be at least 1, got {v}")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig of a new run: the space's settings, overridden by the options given."""
    space = load_space(args.space or DEFAULT_SPACE)
    board = load_board(args.board or space.board)
    spec = args.spec_ms if args.spec_ms is not None else space.spec_ms
    if spec is None:
        raise FnasError(f"{space.source}: the space has no 'spec_ms'; pass --spec-ms")
    if not space.dataset:
        raise FnasError(f"{space.source}: the space has no 'dataset' to train on")
    search = space.search_settings
    for field in ("episodes", "strategy", "reward", "batch"):
        if getattr(args, field) is not None:
            search = replace(search, **{field: getattr(args, field)})
    train = space.train_settings
    if args.epochs is not None:
        train = replace(train, epochs=args.epochs)
    final = _final_settings(space.final_settings, args)
    if args.train_subset is not None:
        train = replace(train, train_subset=args.train_subset)
    precision = args.precision or (SEARCHED if space.searches_precision else space.precision)
    if precision != SEARCHED:
        space = space.with_precision(precision)
    return RunConfig(
        space=space,
        board=board,
        spec_ms=float(spec),
        precision=precision,
        seed=args.seed if args.seed is not None else 0,
        hw_aware=not args.hw_unaware,
        train=train,
        search=search,
        data_dir=args.data_dir,
        style=args.style or "auto",
        device=args.device or "auto",
        final=final,
    )


def _final_settings(final: FinalSettings, args: argparse.Namespace) -> FinalSettings:
    if args.final_k is not None:
        final = replace(final, k=args.final_k)
    if args.final_epochs is not None:
        final = replace(final, epochs=args.final_epochs)
    if args.qat_epochs is not None:
        final = replace(final, qat_epochs=args.qat_epochs)
    return final


def resume_config(args: argparse.Namespace, out: Path) -> RunConfig:
    """The run's own config; ``--episodes`` may extend it, other differing options are an error."""
    cfg = load_run_config(out)
    given = {
        "--spec-ms": (args.spec_ms, cfg.spec_ms),
        "--epochs": (args.epochs, cfg.train.epochs),
        "--train-subset": (args.train_subset, cfg.train.train_subset),
        "--strategy": (args.strategy, cfg.search.strategy),
        "--reward": (args.reward, cfg.search.reward),
        "--seed": (args.seed, cfg.seed),
        "--precision": (args.precision, cfg.precision),
        "--hw-unaware": (True if args.hw_unaware else None, not cfg.hw_aware),
        "--style": (args.style, cfg.style),
        "--batch": (args.batch, cfg.search.batch),
    }
    for flag, (mine, theirs) in given.items():
        if mine is not None and mine != theirs:
            raise FnasError(
                f"--resume continues {out} with its own config.yaml, where {flag} is {theirs}; "
                f"drop {flag} {mine} (only --episodes may change on resume)"
            )
    if args.board is not None and load_board(args.board).name != cfg.board.name:
        raise FnasError(f"--resume continues {out} on board {cfg.board.name}; drop --board {args.board}")
    if args.episodes is not None:
        cfg = replace(cfg, search=replace(cfg.search, episodes=args.episodes))
    if args.data_dir is not None:
        cfg = replace(cfg, data_dir=args.data_dir)
    if args.device is not None:  # where it trains is the machine's business, not the run's
        cfg = replace(cfg, device=args.device)
    # final training may be asked for (or widened) on resume; its epochs only before it began
    final = _final_settings(cfg.final, args)
    started = (out / FINAL_LOG).is_file() or any((out / FINAL_DIR).glob("*.ckpt"))
    if final.epochs != cfg.final.epochs and started:
        raise FnasError(
            f"--resume continues {out}, whose final training began with {cfg.final.epochs} epochs a child; "
            f"drop --final-epochs {args.final_epochs}"
        )
    return replace(cfg, final=final)


class ProgressBar:
    """Children done, pruned, best accuracy so far and time left, on one refreshed line (a tty) or one
    line per child (a log)."""

    def __init__(self, stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.width = width

    def __call__(self, p: Progress) -> None:
        filled = int(self.width * p.done / max(p.total, 1))
        bar = "#" * filled + "-" * (self.width - filled)
        best = f"{p.best_accuracy:.4f}" if p.best_accuracy is not None else "-"
        left = _clock(p.eta_seconds) if p.eta_seconds is not None else "?"
        text = (
            f"[{bar}] {p.done}/{p.total} children | trained {p.trained} pruned {p.pruned} "
            f"failed {p.failed} | best acc {best} | {_clock(p.seconds)} elapsed, {left} left"
        )
        if p.workers and p.workers != "in-process":
            text += f" | training {p.running} on {p.workers}"
        if not p.record:  # a child of the batch finished training: a live update of the line only
            if self.tty:
                print(f"\r{text}\x1b[K", end="", file=self.stream, flush=True)
            return
        if self.tty:
            end = "\n" if p.done == p.total else ""
            print(f"\r{text}\x1b[K", end=end, file=self.stream, flush=True)
        else:
            r = p.record
            what = (
                "pruned"
                if r.get("pruned")
                else ("failed" if r.get("failed") else f"acc {r.get('accuracy', 0):.4f}")
            )
            lat = r.get("latency_ms")
            lat_text = f"{lat:.4f} ms" if lat is not None else "invalid"
            print(f"{text} | child {r.get('key')}: {lat_text}, {what}", file=self.stream, flush=True)


class FinalBar:
    """Final training: child, epoch, loss, validation accuracy, best so far and time left, on one
    refreshed line (a tty) or one line per epoch (a log)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()

    def __call__(self, p: FinalProgress) -> None:
        text = (
            f"{p.phase} training {p.child}/{p.children} (child {p.key}): epoch {p.epoch}/{p.epochs}, loss "
            f"{p.loss:.4f}, val acc {p.val_accuracy:.4f} (best {p.best:.4f}) | {_clock(p.seconds)} elapsed, "
            f"at most {_clock(p.eta_seconds)} left"
        )
        if self.tty:
            print(f"\r{text}\x1b[K", end="\n" if p.epoch == p.epochs else "", file=self.stream, flush=True)
        else:
            print(text, file=self.stream, flush=True)


def repeat_command(cfg: RunConfig, out: Path) -> str:
    """The command line that repeats this run from scratch."""
    parts = ["fnas-hls", "search", "--space", cfg.space.source, "--board", cfg.board.name]
    parts += ["--spec-ms", f"{cfg.spec_ms:g}", "--episodes", str(cfg.search.episodes)]
    parts += ["--epochs", str(cfg.train.epochs), "--strategy", cfg.search.strategy]
    if cfg.train.train_subset is not None:
        parts += ["--train-subset", str(cfg.train.train_subset)]
    parts += ["--reward", cfg.search.reward, "--seed", str(cfg.seed)]
    if cfg.precision != SEARCHED:  # searched: the space's list
        parts += ["--precision", cfg.precision]
    if not cfg.hw_aware:
        parts.append("--hw-unaware")
    if cfg.data_dir:
        parts += ["--data-dir", cfg.data_dir]
    parts += ["--final-k", str(cfg.final.k), "--final-epochs", str(cfg.final.epochs)]
    parts += ["--qat-epochs", str(cfg.final.qat_epochs)]
    parts += ["--out", str(out), "--force"]
    return " ".join(shlex.quote(p) for p in parts)


def _banner(cfg: RunConfig, out: Path) -> str:
    """One line before the search starts: what it trains on, where, and where it writes."""
    name = cfg.space.dataset
    source = describe(name, cfg.data_dir)
    threads = cfg.train.threads if cfg.train.threads is not None else torch.get_num_threads()
    device = resolve_device(cfg.device)
    where = f"{device} ({threads} thread{'s' if threads != 1 else ''})" if device == "cpu" else device
    return (
        f"search: space {cfg.space.name} on {cfg.board.name}, spec {cfg.spec_ms:g} ms, style {cfg.style}; "
        f"dataset {source}; children train on {where}; run folder {out}/"
    )


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def run(args: argparse.Namespace) -> int:
    _check_positive(args)
    if args.evaluations is not None and args.evaluations < 1:
        raise FnasError(f"--evaluations must be at least 1, got {args.evaluations}")
    if args.screen is not None and args.screen < 0:
        raise FnasError(f"--screen must be 0 or more, got {args.screen}")
    if args.final_k is not None and args.final_k < 0:
        raise FnasError(f"--final-k must be 0 or more, got {args.final_k}")
    if args.final_epochs is not None and args.final_epochs < 1:
        raise FnasError(f"--final-epochs must be at least 1, got {args.final_epochs}")
    if args.qat_epochs is not None and args.qat_epochs < 0:
        raise FnasError(f"--qat-epochs must be 0 or more, got {args.qat_epochs}")
    space_path = resolve_space(args.space or DEFAULT_SPACE)
    tabular = is_tabular(space_path)
    if args.evaluate == "table" and not tabular:
        raise FnasError(
            f"--evaluate table: space {space_path} has no 'table'; the tabular spaces are nb201 and "
            "accel-nasbench"
        )
    if tabular:
        for flag, value in (("--final-epochs", args.final_epochs), ("--qat-epochs", args.qat_epochs)):
            if value is not None:
                raise FnasError(
                    f"{flag}: space {space_path} is a public table's; its final training is looked up "
                    f"at the table's long fidelity (drop {flag})"
                )
        if args.evaluate == "train":
            raise FnasError(
                f"--evaluate train: space {space_path} is a public table's; its children are looked up, not "
                "trained here (drop --evaluate)"
            )
        return run_table(args, space_path)
    for flag, value in (("--evaluations", args.evaluations), ("--screen", args.screen)):
        if value is not None:
            raise FnasError(f"{flag}: only a table search (--evaluate table) takes it")
    if args.resume and args.force:
        raise FnasError("--resume and --force contradict each other; give one")
    if args.resume:
        if args.out is None:
            cfg_new = config_from_args(args)
            out = _default_out(cfg_new)
        else:
            out = Path(args.out)
        cfg = resume_config(args, out)
    else:
        cfg = config_from_args(args)
        out = Path(args.out) if args.out else _default_out(cfg)
    command = repeat_command(cfg, out)
    print(_banner(cfg, out), file=sys.stderr, flush=True)
    try:
        outcome = run_search(
            cfg,
            out,
            resume=args.resume,
            force=args.force,
            progress=ProgressBar(),
            command=command,
            hls=not args.no_hls,
            workers=args.workers,
            ray_address=args.ray,
            final_progress=FinalBar(),
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; the log and checkpoint are in {out}/; continue with --resume --out {out}",
            file=sys.stderr,
        )
        raise
    recs = outcome.records
    trained = sum(1 for r in recs if not r["pruned"] and not r["cached"] and not r["failed"])
    pruned = sum(1 for r in recs if r["pruned"])
    print(f"{len(recs)} episodes in {outcome.seconds:.1f} s: {trained} trained, {pruned} pruned")
    if outcome.best is None:
        print(f"report: {outcome.report}")
        raise FnasError(
            f"no trained child meets the {cfg.spec_ms:g} ms spec on {cfg.board.name}; see {outcome.report} "
            "(raise --episodes or --spec-ms)"
        )
    b = outcome.best
    if outcome.final:
        print(
            f"final training of the {len(outcome.final)} best in-spec children "
            f"({sum(r['seconds'] for r in outcome.final):.0f} s): winner {b.key}, "
            f"search val acc {b.proxy_accuracy:.4f} -> final val acc {b.val_accuracy:.4f}"
        )
    print(
        f"best: {b.key} val acc {b.val_accuracy:.4f}, test acc {b.test_accuracy:.4f}, "
        f"{b.latency_ms:.4f} ms (spec {cfg.spec_ms:g} ms)"
    )
    same = "matches" if b.onnx.get("matches_torch") else "DIFFERS FROM"
    print(f"best/: {b.folder}  (model.onnx {same} torch)")
    print(
        f"hls: {b.hls.get('status')}"
        + (f", csim bit exact {b.hls['csim'].get('bit_exact')}" if "csim" in b.hls else "")
    )
    print(f"report: {outcome.report}")
    return 0
