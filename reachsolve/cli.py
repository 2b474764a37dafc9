"""Command line: ``reachsolve check`` and ``reachsolve demo``."""
from __future__ import annotations

import argparse
import os
import sys
from importlib import resources

from . import __version__
from .errors import ModelError
from .model.options import LayoutModel, parse_size


EXIT_STATUS = ("exit status: 0 when no site fails --fail-on; 1 when one does (by default a vulnerable, broken "
               "or unknown site: undecided never passes); 2 on a usage or input error, which wins over 1. "
               "Each bad file is one line on stderr and the other files are still reported in full; when "
               "both happen, the last stderr line counts the findings.")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors: one line, status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _size(t: str) -> int:
    try:
        return parse_size(t)
    except ModelError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _address(t: str) -> int:
    try:
        return int(t, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an address: {t!r}") from None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="free", metavar="NAME|FILE",
                   help="layout model: a bundled name (free, arm64-kernel, arm64-module) or a .toml file")
    p.add_argument("--linker-script", metavar="PATH",
                   help="lay the object out as this linker script does (e.g. a kernel's generated vmlinux.lds)")
    p.add_argument("--placement", choices=("free", "ordered", "as-linked"),
                   help="with a script: ordered (any build, the default) or as-linked (this build)")
    p.add_argument("--image-max", type=_size, default=None, metavar="SIZE",
                   help="largest image: 128M, 1G, 0x8000000 or bytes (default: the model's, 128M)")
    p.add_argument("--image-base", type=_address, default=None, metavar="ADDR",
                   help="fix the image's start address (default: anywhere)")
    p.add_argument("--veneers", dest="veneers", action="store_true", default=None,
                   help="b/bl overflows are repaired by linker veneers (the default)")
    p.add_argument("--no-veneers", dest="veneers", action="store_false",
                   help="count b/bl overflows as failures")
    p.add_argument("--linker", choices=("lld", "bfd", "both", "module"), default=None,
                   help="whose limits apply (default: the model's; both = ld.lld and GNU ld)")
    p.add_argument("--defsym", action="append", default=None, metavar="NAME=EXPR",
                   help="define a symbol as the linkers' --defsym does (with a linker script; repeatable)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="per solver query")
    p.add_argument("--rlimit", type=int, default=0, metavar="N",
                   help="z3 resource units per query, a deterministic limit (default: none)")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N", help="objects analyzed in parallel")
    p.add_argument("--max-memory", type=_size, default=None, metavar="SIZE",
                   help="stop cleanly (input error) instead of using more memory than this")
    p.add_argument("--fail-on", type=_fail_on, default=_fail_on("vulnerable,broken,unknown"), metavar="KINDS",
                   help="verdicts that make the exit status 1 (default: vulnerable,broken,unknown)")
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    p.add_argument("-o", "--output", metavar="FILE", help="write the --format report here instead of stdout")
    p.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    p.add_argument("--sarif", metavar="FILE", help="also write the SARIF report to FILE")
    p.add_argument("-v", "--verbose", action="store_true", help="also list robust sites with their proofs")


def _run(args, paths) -> int:
    try:
        model = _model(args)
    except ModelError as exc:
        print(f"reachsolve: error: {exc}", file=sys.stderr)
        return 2
    from .api import analyze
    from .report.render import json_chunks, text, to_sarif
    if args.max_memory:
        why = _limit_memory(args.max_memory)
        if why:
            print(f"reachsolve: error: {why}", file=sys.stderr)
            return 2
    report = analyze(paths, model, jobs=max(1, args.jobs), keep_objects=False)
    for e in report.errors:
        print(f"reachsolve: error: {e.file}: {e.message}", file=sys.stderr)
    def render(fmt: str):
        if fmt == "json":
            return json_chunks(report)
        return [to_sarif(report) if fmt == "sarif" else text(report, args.verbose)]

    # One run, several formats: --format goes to stdout (or -o), --json/--sarif to files.
    for path, fmt in ((args.json, "json"), (args.sarif, "sarif"), (args.output, args.format)):
        if path:
            try:
                with open(path, "w") as f:
                    f.writelines(render(fmt))
            except OSError as exc:
                print(f"reachsolve: error: {path}: {exc.strerror}", file=sys.stderr)
                return 2
    if not args.output:
        sys.stdout.writelines(render(args.format))
    failing = [v for v in args.fail_on if report.summary[v]]
    if report.errors and failing:
        # Exit 2 says an input was bad; this line keeps the findings of the good ones visible.
        counts = ", ".join(f"{report.summary[v]} {v}" for v in failing)
        print(f"reachsolve: {counts} in the objects analyzed; {len(report.errors)} input "
              f"error{'s' if len(report.errors) > 1 else ''}", file=sys.stderr)
    return report.exit_status(args.fail_on)


def _fail_on(text: str) -> tuple:
    from .report.proofs import Verdict
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    allowed = ("vulnerable", "broken", "unknown")
    bad = [k for k in kinds if k not in allowed]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"{bad[0] if bad else text!r} is not a verdict to fail on; "
                                         f"give a comma list of {', '.join(allowed)}")
    return tuple(Verdict(k) for k in dict.fromkeys(kinds))


def _model(args) -> LayoutModel:
    """The model file, then --linker-script, then explicit options on top (as load_model does)."""
    from .api import load_model
    return load_model(args.model, linker_script=args.linker_script, placement=args.placement,
                      image_base=args.image_base, image_max=args.image_max, veneers=args.veneers,
                      linker=args.linker, timeout_ms=max(1, int(args.timeout * 1000)), rlimit=max(0, args.rlimit),
                      defsym=args.defsym)


_RESERVE = 32 << 20  # room beyond what is held at start: a --jobs worker's own thread, first objects


def _data_size() -> int | None:
    """The process's data segment now (VmData: what RLIMIT_DATA counts), or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) << 10
    except OSError:
        pass
    return None


def _mib(n: int) -> str:
    return f"{-(-n // (1 << 20))}M"


def _limit_memory(nbytes: int) -> str | None:
    """Cap the data segment (inherited by --jobs workers) and z3's own allocator; or say why
    ``nbytes`` cannot work. The libraries already loaded hold a data segment of their own,
    so a limit below it would fail at the first allocation (in z3, as a crash)."""
    import resource

    from .prove.backend import limit_memory, prepare_for_memory_limit

    from .target.decode import decode

    prepare_for_memory_limit()
    decode(0xD503201F)  # a nop: capstone loaded now, so that its data segment is counted
    used = _data_size()
    if used is None:
        if nbytes < (256 << 20):
            return "--max-memory below 256M needs /proc/self/status (Linux) to check it"
        used = 0
    need = used + _RESERVE
    if nbytes < need:
        return (f"--max-memory {_mib(nbytes)} is too small: reachsolve holds {_mib(used)} before analyzing "
                f"anything; use at least {_mib(need)}")
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    soft = nbytes if hard == resource.RLIM_INFINITY else min(nbytes, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
    limit_memory((soft - used) // 2)
    return None


def demo_object() -> str:
    """Path of the bundled demo object (built from reachsolve/data/demo.S)."""
    return str(resources.files("reachsolve") / "data" / "demo.o")


def main(argv=None) -> int:
    p = _Parser(prog="reachsolve", description=__doc__)
    p.add_argument("--version", action="version", version=f"reachsolve {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    c = sub.add_parser("check", help="decide every range-limited relocation site in objects", epilog=EXIT_STATUS)
    _common(c)
    c.add_argument("files", nargs="+", metavar="FILE")
    d = sub.add_parser("demo", help="run check on the bundled example (the 2021 KVM pattern)")
    _common(d)
    args = p.parse_args(argv)
    if args.max_memory:
        # OpenBLAS's thread buffers (numpy) are 40 MiB of data segment that nothing here uses.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    paths = args.files if args.cmd == "check" else [demo_object()]
    if args.cmd == "demo":
        args.verbose = True
        if args.format == "text" and not args.output:
            print(f"# reachsolve check {os.path.basename(paths[0])}  (source: reachsolve/data/demo.S)")
    try:
        return _run(args, paths)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
