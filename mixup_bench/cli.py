"""`mixup-bench <subcommand> ...`: dispatch without importing anything heavy.

`train` hands the rest of the command line to Hydra (so `-m`, `--cfg job`,
`--help` and `hydra.run.dir=...` behave as Hydra users expect); `report`,
`status`, `bench` and `speed-check` have their own argument parsers. torch is imported only once a
run starts, so `--help` answers at once.
"""

from __future__ import annotations

import sys

USAGE = """usage: mixup-bench [--help] [--version] <command> [args]

Reproduce Mixup / CutMix benchmarks on CIFAR-10 and check the published claims.

commands:
  train     train one configuration, or a sweep with -m (Hydra overrides:
            mixup-bench train aug=mixup alpha=0.2; mixup-bench train --help)
  report    tables, plots and verdicts from run directories
            (mixup-bench report multirun/<sweep> [--out DIR])
  status    each job of a sweep: state, epoch, accuracy, wall time, ETA
            (mixup-bench status multirun/<sweep> [--watch])
  bench     measure training throughput and memory (mixup-bench bench --help)
  speed-check  equivalence of the speed switches and the paper recipe's projected
            wall time, from run directories (mixup-bench speed-check --help)

examples:
  mixup-bench train experiment=smoke
  mixup-bench train -m aug=none,mixup,cutmix seed=0,1
  mixup-bench train --cfg job aug=cutmix
"""

COMMANDS = ("train", "report", "status", "bench", "speed-check")


def _error(message: str, code: int = 2) -> int:
    for line in message.splitlines():
        print(f"mixup-bench: error: {line}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 2
    if argv[0] == "--version":
        from . import __version__

        print(f"mixup-bench {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(command, COMMANDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return _error(f"unknown command {command!r}{hint}; expected one of "
                      f"{', '.join(COMMANDS)}")
    if command == "train":
        from .hydra_app import train_main

        return train_main(rest)
    if command == "report":
        from .report.cli import main as report_main

        return report_main(rest)
    if command == "status":
        from .report.status import main as status_main

        return status_main(rest)
    if command == "speed-check":
        from .report.speed_check.check import main as speed_check_main

        return speed_check_main(rest)
    from .bench import main as bench_main

    return bench_main(rest)


if __name__ == "__main__":
    sys.exit(main())
