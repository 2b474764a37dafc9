"""Command line: ``reachsolve check`` and ``reachsolve demo``."""
from __future__ import annotations

import argparse
import gc
import os
import sys
from importlib import resources

from . import __version__
from .errors import ModelError
from .model.options import LayoutModel, parse_size


EXIT_STATUS = ("exit status: 0 when no finding fails --fail-on; 1 when one does (by default a vulnerable, broken "
               "or unknown site: undecided never passes; a suppressed finding fails nothing); 2 on a usage or "
               "input error, which wins over 1. Each bad file is one line on stderr and the other files are "
               "still reported in full; when both happen, the last stderr line counts the findings and the "
               "errors.")


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
                   help="define a symbol as the linkers' --defsym does (repeatable)")
    p.add_argument("--final-link", choices=("static", "pie", "shared"), default=None, metavar="TYPE",
                   help="the output type of the final link (static, pie, shared): undefined weak references are "
                        "decided on the value the linkers give them; default: open world")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="per solver query")
    p.add_argument("--rlimit", type=int, default=0, metavar="N",
                   help="z3 resource units per query, a deterministic limit (default: none)")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="objects analyzed in parallel; for one object, threads for its column-wise proofs")
    p.add_argument("--max-memory", type=_size, default=None, metavar="SIZE",
                   help="stop cleanly (input error) instead of using more memory than this")
    p.add_argument("--fail-on", type=_fail_on, default=_fail_on("vulnerable,broken,unknown"), metavar="KINDS",
                   help="findings that make the exit status 1: a comma list of vulnerable, near, broken, unknown, "
                        "new (default: vulnerable,broken,unknown)")
    p.add_argument("--min-margin", type=_size, default=None, metavar="SIZE",
                   help="flag a vulnerable site whose margin is below SIZE as near (script models)")
    p.add_argument("--baseline", metavar="OLD.json",
                   help="mark each finding new, unchanged or updated against an earlier JSON report")
    p.add_argument("--suppressions", metavar="FILE",
                   help="TOML file of [[suppress]] fingerprint = ..., reason = ...: reported, not failing")
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    p.add_argument("-o", "--output", metavar="FILE", help="write the --format report here instead of stdout")
    p.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    p.add_argument("--sarif", metavar="FILE", help="also write the SARIF report to FILE")
    p.add_argument("--all-sites", action="store_true",
                   help="JSON: list every site, robust ones and their proof tables included")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also list robust sites with their proofs (text), every site (JSON)")
    p.add_argument("-q", "--quiet", action="store_true", help="print findings and errors only")
    p.add_argument("--color", "--colour", dest="color", choices=("auto", "always", "never"), default="auto",
                   help="colour the text report: auto (a terminal, unless NO_COLOR is set), always, never")
    p.add_argument("--emit-linker-script", metavar="DIR",
                   help="write, for each counterexample, ld.lld and GNU ld scripts of its layout and a repro.sh "
                        "that links with them and prints what the linkers say (DIR/<object>/<site>/)")
    p.add_argument("--source-root", metavar="DIR",
                   help="print source paths (DWARF line tables) relative to DIR, e.g. the kernel tree")


def _run(args, paths) -> int:
    from .errors import InputError
    try:
        model = _model(args)
    except ModelError as exc:
        print(f"reachsolve: error: {exc}", file=sys.stderr)
        return 2
    from .api import analyze
    from .report.render import json_chunks, text
    from .report.sarif import to_sarif
    if "new" in args.fail_on and not args.baseline:
        print("reachsolve: error: --fail-on new needs --baseline OLD.json", file=sys.stderr)
        return 2
    if args.max_memory:
        why = _limit_memory(args.max_memory)
        if why:
            print(f"reachsolve: error: {why}", file=sys.stderr)
            return 2
    if args.source_root and not os.path.isdir(args.source_root):
        print(f"reachsolve: error: --source-root {args.source_root}: not a directory", file=sys.stderr)
        return 2
    progress = _Progress.start(args)
    try:
        report = analyze(paths, model, jobs=max(1, args.jobs), keep_objects=False, baseline=args.baseline,
                         suppressions=args.suppressions, progress=progress,
                         source_root=args.source_root)
    except InputError as exc:      # the baseline or the suppressions file
        print(f"reachsolve: error: {exc.file}: {exc.message}", file=sys.stderr)
        return 2
    except ModelError as exc:
        print(f"reachsolve: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if progress is not None:
            progress.close()
    for e in report.errors:
        print(f"reachsolve: error: {e.file}: {e.message}", file=sys.stderr)
    repro = None
    if args.emit_linker_script:
        from .api import emit_repro
        try:
            repro = emit_repro(report, args.emit_linker_script)
        except OSError as exc:
            print(f"reachsolve: error: {args.emit_linker_script}: {exc.strerror}", file=sys.stderr)
            return 2
        except InputError as exc:
            print(f"reachsolve: error: {exc.file}: {exc.message}", file=sys.stderr)
            return 2
    all_sites = args.all_sites or args.verbose

    def render(fmt: str, to_terminal: bool):
        if fmt == "json":
            return _checked(json_chunks(report, all_sites), "json")
        if fmt == "sarif":
            return _checked([to_sarif(report)], "sarif")
        return [text(report, args.verbose, repro, quiet=args.quiet,
                     colour=to_terminal and _colour(args, sys.stdout))]

    # One run, several formats: --format goes to stdout (or -o), --json/--sarif to files.
    for path, fmt in ((args.json, "json"), (args.sarif, "sarif"), (args.output, args.format)):
        if path:
            try:
                with open(path, "w") as f:
                    f.writelines(render(fmt, False))
            except OSError as exc:
                print(f"reachsolve: error: {path}: {exc.strerror}", file=sys.stderr)
                return 2
    if not args.output:
        sys.stdout.writelines(render(args.format, True))
    failing = report.failing_sites(args.fail_on)
    if report.errors and failing:
        # Exit 2 says an input was bad; this line keeps the findings of the good ones visible.
        counts = {}
        for s in failing:
            counts[s.verdict] = counts.get(s.verdict, 0) + 1
        words = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
        print(f"reachsolve: {words} in the objects analyzed; {len(report.errors)} input "
              f"error{'s' if len(report.errors) > 1 else ''}", file=sys.stderr)
    return report.exit_status(args.fail_on)


def _checked(chunks, fmt: str):
    """With REACHSOLVE_SELF_CHECK set (the test suite sets it), every JSON and SARIF report
    is validated against its schema before it is written."""
    if not os.environ.get("REACHSOLVE_SELF_CHECK"):
        return chunks
    from .report.schema import validate
    chunks = list(chunks)
    validate("".join(chunks), fmt)
    return chunks


def _colour(args, stream) -> bool:
    if args.color != "auto":
        return args.color == "always"
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


class _Progress:
    """One progress line on stderr while objects are analyzed: a terminal only, never -q."""

    def __init__(self, bar):
        self.bar = bar
        self.t0 = bar.start_t

    @classmethod
    def start(cls, args):
        if args.quiet or not sys.stderr.isatty():
            return None
        import shutil

        from tqdm import tqdm
        cols, rows = shutil.get_terminal_size()   # a terminal of size 0 (some CI ptys) gets 80x24
        return cls(tqdm(total=None, unit="obj", file=sys.stderr, leave=False, ncols=cols, nrows=rows,
                        desc="reachsolve", bar_format="{desc}: {n_fmt}/{total_fmt} files {postfix} [{elapsed}]"))

    def __call__(self, done: int, total: int, sites: int) -> None:
        self.bar.total = total
        self.bar.set_postfix_str(f"{sites} sites decided", refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _fail_on(text: str) -> tuple:
    from .report.proofs import VERDICTS, Verdict
    from .report.proofs import FAIL_KINDS
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in FAIL_KINDS]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"{bad[0] if bad else text!r} is not a kind to fail on; "
                                         f"give a comma list of {', '.join(FAIL_KINDS)}")
    return tuple(Verdict(k) if k in VERDICTS else k for k in dict.fromkeys(kinds))


def _model(args) -> LayoutModel:
    """The model file, then --linker-script, then explicit options on top (as load_model does)."""
    from .api import load_model
    return load_model(args.model, linker_script=args.linker_script, placement=args.placement,
                      image_base=args.image_base, image_max=args.image_max, veneers=args.veneers,
                      linker=args.linker, timeout_ms=max(1, int(args.timeout * 1000)), rlimit=max(0, args.rlimit),
                      defsym=args.defsym, min_margin=args.min_margin, final_link=args.final_link)


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


def _diff(old: str, new: str) -> int:
    from .errors import InputError
    from .report.annotate import read_report
    from .report.diff import compare, render, worse
    try:
        a, b = read_report(old), read_report(new)
    except InputError as exc:
        print(f"reachsolve: error: {exc.file}: {exc.message}", file=sys.stderr)
        return 2
    changes, skipped = compare(a, b)
    sys.stdout.write(render(changes, skipped))
    return 1 if worse(changes) else 0


def demo_object() -> str:
    """Path of the bundled demo object (built from reachsolve/data/demo.S)."""
    return str(resources.files("reachsolve") / "data" / "demo.o")


def run() -> None:
    """The command's entry point: main, then an exit that frees nothing (see
    prove.pipeline.hold_until_exit); the output is flushed first."""
    from .prove.pipeline import hold_until_exit
    hold_until_exit()
    # The cyclic collector stays off to the end (see cyclic_collection_paused): turned back on,
    # its first pass would walk every object the run made, just before the exit frees them all.
    gc.disable()
    rc = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        rc = 1 if rc == 0 else rc
    sys.stderr.flush()
    os._exit(rc)


def main(argv=None) -> int:
    p = _Parser(prog="reachsolve", description=__doc__)
    p.add_argument("--version", action="version", version=f"reachsolve {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    c = sub.add_parser("check", help="decide every range-limited relocation site in objects", epilog=EXIT_STATUS)
    _common(c)
    c.add_argument("files", nargs="+", metavar="FILE")
    d = sub.add_parser("demo", help="run check on the bundled example (the 2021 KVM pattern)")
    _common(d)
    f = sub.add_parser("diff", help="compare two JSON reports: new findings, fixed ones, margins that moved",
                       epilog="exit status: 1 when NEW has a new finding, a worse verdict, a smaller margin or "
                              "a newly near site; 0 otherwise; 2 when a report cannot be read.")
    f.add_argument("old", metavar="OLD.json")
    f.add_argument("new", metavar="NEW.json")
    args = p.parse_args(argv)
    if args.cmd == "diff":
        return _diff(args.old, args.new)
    if args.max_memory:
        # OpenBLAS's thread buffers (numpy) are 40 MiB of data segment that nothing here uses.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    paths = args.files if args.cmd == "check" else [demo_object()]
    if args.cmd == "demo":
        args.verbose = True
        if args.format == "text" and not args.output:
            print(f"# reachsolve check {os.path.basename(paths[0])}  (source: reachsolve/data/demo.S)")
    from .prove.pipeline import cyclic_collection_paused
    try:
        with cyclic_collection_paused():   # until the report is written, not only the analysis
            return _run(args, paths)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
