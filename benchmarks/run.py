#!/usr/bin/env python3
"""Benchmark runner: reachsolve against ld.lld and llvm-readelf on the corpora.

Usage (from the repository root)::

    python3 -m benchmarks [--runs N] [--corpus tiny,tiny-prefix,tiny-debug,tiny-debug-prefix,
                                      big,big-prefix,defconfig,modules,openblas,
                                      openblas-loose,micro]
                          [--out benchmarks/results] [--jobs 2] [--modules-every K]
    python3 -m benchmarks --report-only [--date YYYY-MM-DD]   # redo the .md and .png

For every corpus that is built (see benchmarks/corpus.py; "micro" is the
assembled tests/fixtures/*.S), every tool is run N times, interleaved: each
round runs each tool once, and the order of the tools rotates from round to
round.  Every tool invocation is a direct child of this process; its wall time
is taken around fork/exec..wait4, and its CPU time and peak RSS come from the
rusage that os.wait4 returns for it (ru_maxrss: the largest resident set of
that child or of any of its own children that it waited for, i.e. a maximum
over processes, not a sum).  A tool that needs several invocations (one ld.lld
per module, or argument lists too long for one command line) gets the sum of
their wall and CPU times and the maximum of their peak RSS.  For reachsolve
with --jobs > 1 the runner also samples the summed PSS of the whole process
tree every 0.1 s ("tree PSS").

reachsolve is run from a snapshot of reachsolve/ and models/ copied into a
temporary directory at start, so that concurrent edits of the working tree do
not change the code between rounds; the snapshot's digest is recorded.

Results: <out>/<date>-<corpus>.json per corpus (sorted keys), and
<out>/<date>.md and <out>/<date>.png built from all <date>-<corpus>.json files
present in <out>.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.corpus import corpus_path  # noqa: E402

CORPORA = ("tiny", "tiny-prefix", "tiny-debug", "tiny-debug-prefix", "big", "big-prefix", "defconfig", "modules",
           "openblas", "openblas-loose", "micro")
KERNEL_CORPORA = ("tiny", "tiny-prefix", "tiny-debug", "tiny-debug-prefix", "big", "big-prefix", "defconfig")
#: The CLI with the library's source_lines=False: what reachsolve costs without reading
#: DWARF line tables (run beside the plain CLI on kernels built with debug information).
NO_LINES = ("import sys, functools, reachsolve.api as a; "
            "a.analyze = functools.partial(a.analyze, source_lines=False); "
            "from reachsolve.cli import main; sys.exit(main(sys.argv[1:]))")
FIXTURES = ROOT / "tests" / "fixtures"

#: The kernel's own final-link flags for arm64 (arch/arm64/Makefile + top
#: Makefile, LLVM=1): -EL -maarch64elf, -z norelro -z noexecstack, -X,
#: --pic-veneer (CONFIG_RELOCATABLE: -shared -Bsymbolic -z notext
#: --no-apply-dynamic-relocs).  --unresolved-symbols=ignore-all stands in for
#: the kallsyms/BTF objects that the real link adds.
KERNEL_LDFLAGS = ("-EL", "-maarch64elf", "-z", "norelro", "-z", "noexecstack", "-X",
                  "--pic-veneer", "-shared", "-Bsymbolic", "-z", "notext",
                  "--no-apply-dynamic-relocs", "--unresolved-symbols=ignore-all")
#: One module linked on its own into a static executable: the .ko's text is
#: not PIC (ADR_PREL_PG_HI21/ABS64/PREL32 against its own and the kernel's
#: symbols), so -shared refuses every module ("recompile with -fPIC"); a static
#: link resolves the kernel's symbols to 0 and applies every relocation.
MODULE_LDFLAGS = ("-EL", "-maarch64elf", "--unresolved-symbols=ignore-all")
#: The fixtures hold broken sites on purpose; ld.lld reports each of them.
#: --noinhibit-exec turns out-of-range errors into warnings so that ld.lld does
#: the whole link, and --error-limit=0 keeps it from stopping after 20.
MICRO_LDFLAGS = ("-EL", "-maarch64elf", "--unresolved-symbols=ignore-all",
                 "--noinhibit-exec", "--error-limit=0")

SAMPLE_INTERVAL = 0.1


# --------------------------------------------------------------------------
# Measuring one child


def _proc_stat(pid: str) -> tuple[int, int] | None:
    """(ppid, rss pages) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rfind(")") + 2:].split()
    return int(rest[1]), int(rest[21])


def _pss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class TreeSampler(threading.Thread):
    """Samples the summed PSS (RSS where PSS is unreadable) of a process tree."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root, self.peak_kib, self.samples = root, 0, 0
        self._halt = threading.Event()
        self._page_kib = os.sysconf("SC_PAGE_SIZE") // 1024

    def run(self) -> None:
        while not self._halt.wait(SAMPLE_INTERVAL):
            stats = {}
            for name in os.listdir("/proc"):
                if name.isdigit():
                    st = _proc_stat(name)
                    if st:
                        stats[int(name)] = st
            children = defaultdict(list)
            for pid, (ppid, _) in stats.items():
                children[ppid].append(pid)
            tree, todo = [], [self.root]
            while todo:
                pid = todo.pop()
                if pid in stats:
                    tree.append(pid)
                    todo += children.get(pid, [])
            total = 0
            for pid in tree:
                pss = _pss_kib(pid)
                total += pss if pss is not None else stats[pid][1] * self._page_kib
            self.samples += 1
            self.peak_kib = max(self.peak_kib, total)

    def stop(self) -> None:
        self._halt.set()
        self.join()


#: Why a launcher: on Linux a child's ru_maxrss is at least the resident set of
#: the process it was forked from, because exec() folds the old address space's
#: high-water mark into it (and subprocess uses vfork, whose old address space
#: is the parent's).  Once this runner has parsed a report it is over 100 MB, and
#: that figure then showed up as the "peak RSS" of every ld.lld and llvm-readelf.
#: So each tool is started by this tiny C program, which forks it from its own
#: ~1 MB address space, waits for it with wait4() and writes what wait4
#: returned.  The tool is still a child (grandchild) in this process tree.
LAUNCHER_C = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct timespec t0, t1;
    struct rusage ru;
    int st, code;
    pid_t pid;
    FILE *f;
    if (argc < 3) {
        fputs("usage: rusage-exec RESULT-FILE PROGRAM [ARG...]\n", stderr);
        return 127;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid = fork();
    if (pid < 0) { perror("fork"); return 127; }
    if (pid == 0) { execvp(argv[2], argv + 2); perror(argv[2]); _exit(127); }
    if (wait4(pid, &st, 0, &ru) < 0) { perror("wait4"); return 127; }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    code = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    f = fopen(argv[1], "w");
    if (!f) { perror(argv[1]); return 127; }
    fprintf(f, "%d %.9f %ld.%06ld %ld.%06ld %ld\n", code,
            (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
            (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec,
            (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, ru.ru_maxrss);
    return fclose(f) == 0 ? 0 : 127;
}
"""

_LAUNCHER: Path | None = None
_CURRENT: subprocess.Popen | None = None   # the launcher running now, for cleanup


def build_launcher(tmp: Path) -> str:
    """Compile the launcher into *tmp*; returns how RSS is measured."""
    global _LAUNCHER
    src, exe = tmp / "rusage-exec.c", tmp / "rusage-exec"
    src.write_text(LAUNCHER_C)
    for cc in ("cc", "gcc", "clang"):
        if shutil.which(cc) and subprocess.run([cc, "-O2", "-o", str(exe), str(src)],
                                               capture_output=True).returncode == 0:
            _LAUNCHER = exe
            return (f"wait4() rusage of each tool process, forked by a ~1 MB C launcher "
                    f"(built with {cc}); ru_maxrss is that process's own peak, or that of "
                    f"its largest waited-for child")
    print("warning: no C compiler for the launcher; peak RSS of a child will be at least "
          "this runner's own RSS at the time", file=sys.stderr, flush=True)
    return "wait4() rusage of each tool process, spawned directly (floor: the runner's RSS)"


def run_child(argv: list[str], *, cwd: Path | None, env: dict | None, stdout, stderr,
              sample_tree: bool, result_file: Path) -> dict:
    global _CURRENT
    t0 = time.perf_counter()
    full = [str(_LAUNCHER), str(result_file), *argv] if _LAUNCHER else argv
    proc = subprocess.Popen(full, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=stdout, stderr=stderr, start_new_session=True)
    _CURRENT = proc
    sampler = None
    if sample_tree:
        sampler = TreeSampler(proc.pid)
        sampler.start()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    _CURRENT = None
    if sampler:
        sampler.stop()
    if _LAUNCHER:
        if proc.returncode != 0:
            raise RuntimeError(f"launcher failed ({proc.returncode}) for {_q(argv)[:200]}")
        code, wall_s, user, sys_, maxrss = result_file.read_text().split()
        out = {"wall_s": float(wall_s), "user_s": float(user), "sys_s": float(sys_),
               "peak_rss_kib": int(maxrss), "status": int(code)}
    else:
        out = {"wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
               "peak_rss_kib": ru.ru_maxrss, "status": proc.returncode}
    if sampler:
        out["tree_pss_kib"] = sampler.peak_kib if sampler.samples else None
    return out


def kill_current() -> None:
    """End the tool running now (its whole session: launcher, tool, workers)."""
    proc = _CURRENT
    if proc is not None and proc.returncode is None:
        try:
            os.killpg(proc.pid, 15)
            os.waitpid(proc.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


# --------------------------------------------------------------------------
# Tools and corpora


@dataclass
class Tool:
    key: str                       # "reachsolve-script", "ld.lld", ...
    label: str                     # for tables and the plot
    kind: str                      # "reachsolve" | "ld.lld" | "llvm-readelf"
    invocations: list[list[str]]
    command: str                   # one representative command line, for the record
    ok_status: tuple[int, ...] = (0,)
    cwd: Path | None = None
    env: dict | None = None
    sample_tree: bool = False
    reports: list[Path] = field(default_factory=list)   # reachsolve JSON outputs
    runs: list[dict] = field(default_factory=list)
    unexpected: list[dict] = field(default_factory=list)


def _report_runs(prefix: list[str], inputs: list[str], tmp: Path, name: str):
    """(batches, report paths, command lines): *prefix* ends in "-o OUT"; each batch of
    *inputs* writes its own report ``<name>-<i>.json`` in *tmp*."""
    batches = _batches(prefix, inputs)
    reports = [tmp / f"{name}-{i}.json" for i in range(len(batches))]
    invs = [prefix[:-1] + [str(out)] + batch for out, batch in zip(reports, batches)]
    return batches, reports, invs


def _batches(prefix: list[str], files: list[str]) -> list[list[str]]:
    """Split *files* into command lines that fit in ARG_MAX (with room to spare)."""
    limit = os.sysconf("SC_ARG_MAX") // 2 - sum(len(k) + len(v) + 2 for k, v in os.environ.items())
    limit = max(limit, 32 * 1024)
    base = sum(len(a) + 1 + 8 for a in prefix)
    out, cur, size = [], [], base
    for f in files:
        n = len(f) + 1 + 8  # the string, its NUL and the argv pointer
        if cur and size + n > limit:
            out.append(cur)
            cur, size = [], base
        cur.append(f)
        size += n
    if cur:
        out.append(cur)
    return out


def _q(argv: list[str]) -> str:
    import shlex
    return " ".join(shlex.quote(str(a)) for a in argv)


def _assemble_fixtures(dest: Path) -> list[Path]:
    """tests/fixtures/*.S -> dest/*.o, little-endian, as tests/conftest.py does
    (clang --target=aarch64-linux-gnu -I tests/fixtures; fixtures with
    '// defsym:' lines then go through ld.lld -r --defsym for their absolute
    symbols)."""
    dest.mkdir(parents=True, exist_ok=True)
    objs = []
    for src in sorted(FIXTURES.glob("*.S")):
        out = dest / f"{src.stem}.o"
        defsyms = [d for line in src.read_text().splitlines() if line.startswith("// defsym:")
                   for d in line.split(":", 1)[1].split()]
        first = dest / f"{src.stem}.s.o" if defsyms else out
        subprocess.run(["clang", "--target=aarch64-linux-gnu", "-I", str(FIXTURES), "-c",
                        str(src), "-o", str(first)], check=True)
        if defsyms:
            cmd = ["ld.lld", "-r", str(first), "-o", str(out)]
            for d in defsyms:
                cmd += ["--defsym", d]
            subprocess.run(cmd, check=True)
        objs.append(out)
    return objs


def _rs(snap: Path) -> list[str]:
    return [sys.executable, "-m", "reachsolve", "check"]


def _rs_env(snap: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(snap) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTHONHASHSEED", None)
    return env


def setup_corpus(name: str, tmp: Path, snap: Path, args) -> dict | None:
    """The tools to run on *name* and what they run on; None when not built."""
    rs, env = _rs(snap), _rs_env(snap)
    notes: list[str] = []
    subset = None
    if name in KERNEL_CORPORA:
        base = corpus_path(name)
        if base is None:
            return None
        obj, lds = str(base / "vmlinux.o"), str(base / "vmlinux.lds")
        inputs = [obj]
        rj_script, rj_free = tmp / f"{name}-script.json", tmp / f"{name}-free.json"
        # --jobs on one object: threads for its column-wise proofs (ld.lld uses every core too)
        jobs = ["--jobs", str(args.jobs)]
        a = rs + [*jobs, "--linker-script", lds, "--format", "json", "-o", str(rj_script), obj]
        b = rs + [*jobs, "--format", "json", "-o", str(rj_free), obj]
        lld = ["ld.lld", *KERNEL_LDFLAGS, "-T", lds, obj, "-o", str(tmp / "vmlinux")]
        rd = ["llvm-readelf", "-r", obj]
        tools = [
            Tool("reachsolve-script", f"reachsolve --jobs {args.jobs} --linker-script vmlinux.lds", "reachsolve",
                 [a], _q(a), (0, 1), snap, env, reports=[rj_script]),
            Tool("reachsolve-free", f"reachsolve (free model) --jobs {args.jobs}", "reachsolve",
                 [b], _q(b), (0, 1), snap, env, reports=[rj_free]),
            Tool("ld.lld", "ld.lld (kernel link flags, -T vmlinux.lds)", "ld.lld", [lld], _q(lld)),
            Tool("llvm-readelf", "llvm-readelf -r", "llvm-readelf", [rd], _q(rd) + " >/dev/null"),
        ]
        notes.append("ld.lld links vmlinux.o alone: the kallsyms and BTF objects of the real "
                     "kernel link are missing, hence --unresolved-symbols=ignore-all")
        if "debug" in name:   # the cost of source lines: the same runs with line tables not read
            off = [sys.executable, "-c", NO_LINES, "check"]
            for key, label, run in (
                    ("reachsolve-script", f"reachsolve --jobs {args.jobs} --linker-script vmlinux.lds", a),
                    ("reachsolve-free", f"reachsolve (free model) --jobs {args.jobs}", b)):
                out = tmp / f"{name}-{key}-nolines.json"
                argv = off + run[len(rs):]
                argv[argv.index("-o") + 1] = str(out)
                tools.append(Tool(f"{key}-nolines", f"{label}, source lines off", "reachsolve", [argv],
                                  _q(argv), (0, 1), snap, env, reports=[out]))
            notes.append("'source lines off' runs the same CLI with analyze(source_lines=False); "
                         "lines_cost is the median wall time with lines over the one without")
    elif name == "modules":
        base = corpus_path(name)
        if base is None:
            return None
        rels = [l for l in (base / "modules.txt").read_text().splitlines() if l.strip()]
        if args.modules_every > 1:
            rels = rels[::args.modules_every]
            subset = {"every": args.modules_every, "of": len(
                [l for l in (base / "modules.txt").read_text().splitlines() if l.strip()]),
                "files": len(rels), "rule": f"lines 1, 1+{args.modules_every}, ... of modules.txt"}
        inputs = [str(base / r) for r in rels]
        prefix = rs + ["--model", "arm64-module", "--jobs", str(args.jobs), "--format", "json",
                       "-o", "OUT"]
        batches, reports, invs = _report_runs(prefix, inputs, tmp, "modules")
        if len(batches) > 1:
            notes.append(f"reachsolve and llvm-readelf run in {len(batches)} invocations "
                         "(argument list too long for one); times summed, peak RSS is the max")
        lld_invs = [["ld.lld", *MODULE_LDFLAGS, "-o", str(tmp / "module.out"), f] for f in inputs]
        rd_invs = [["llvm-readelf", "-r", *b] for b in _batches(["llvm-readelf", "-r"], inputs)]
        tools = [
            Tool("reachsolve-module", f"reachsolve --model arm64-module --jobs {args.jobs}",
                 "reachsolve", invs, _q(prefix[:-1] + [str(tmp / "modules-0.json")]) +
                 f" <{len(inputs)} .ko files>", (0, 1), snap, env,
                 sample_tree=args.jobs > 1, reports=reports),
            Tool("ld.lld", "ld.lld, one static link per module", "ld.lld", lld_invs,
                 _q(["ld.lld", *MODULE_LDFLAGS, "-o", str(tmp / "module.out")]) +
                 f" X.ko   (x{len(inputs)}, summed)"),
            Tool("llvm-readelf", "llvm-readelf -r", "llvm-readelf", rd_invs,
                 f"llvm-readelf -r <{len(inputs)} .ko files> >/dev/null"),
        ]
        notes.append("ld.lld -shared refuses every module (non-PIC ADR_PREL_PG_HI21/ABS64/PREL32: "
                     "'recompile with -fPIC'), so each .ko is linked on its own into a static "
                     "executable (kernel symbols resolve to 0); the output is overwritten each time")
        notes.append("ld.lld per-module figures are sums over one process per module, so they "
                     "include one fork/exec per module")
    elif name in ("openblas", "openblas-loose"):
        base = corpus_path(name)
        if base is None:
            return None
        archive = name == "openblas"
        if archive:
            inputs = [str(base / "libopenblas.a")]
            what = inputs[0]
        else:
            rels = [l for l in (base / "members.txt").read_text().splitlines() if l.strip()]
            inputs = [str(base / r) for r in rels]
            what = f"<{len(inputs)} member files>"
        prefix = rs + ["--jobs", str(args.jobs), "--format", "json", "-o", "OUT"]
        batches, reports, invs = _report_runs(prefix, inputs, tmp, name)
        lld_prefix = ["ld.lld", "-r", *(["--whole-archive"] if archive else []), "-o", "/dev/null"]
        lld_invs = [lld_prefix + b for b in _batches(lld_prefix, inputs)]
        rd_invs = [["llvm-readelf", "-r", *b] for b in _batches(["llvm-readelf", "-r"], inputs)]
        if len(batches) > 1 or len(lld_invs) > 1:
            notes.append(f"reachsolve, ld.lld and llvm-readelf run in {len(batches)}, {len(lld_invs)} "
                         f"and {len(rd_invs)} invocations (argument list too long for one); times "
                         "summed, peak RSS is the max")
        tools = [
            Tool("reachsolve-free", f"reachsolve (free model) --jobs {args.jobs}", "reachsolve", invs,
                 _q(prefix[:-1] + [str(reports[0])]) + f" {what}",
                 (0, 1), snap, env, sample_tree=args.jobs > 1, reports=reports),
            Tool("ld.lld", "ld.lld -r" + (" --whole-archive" if archive else ""), "ld.lld", lld_invs,
                 f"{_q(lld_prefix)} {what}"),
            Tool("llvm-readelf", "llvm-readelf -r", "llvm-readelf", rd_invs,
                 f"llvm-readelf -r {what} >/dev/null"),
        ]
        notes.append("Debian's arm64 libopenblas-pthread-dev static archive"
                     + ("" if archive else ", its members as separate files")
                     + "; reachsolve uses the free model (a user-space library), ld.lld does one "
                     "relocatable link of " + ("the whole archive" if archive else "all the member files")
                     + " into /dev/null")
    elif name == "micro":
        objs = _assemble_fixtures(tmp / "micro")
        inputs = [str(o) for o in objs]
        rj = tmp / "micro.json"
        a = rs + ["--format", "json", "-o", str(rj), *inputs]
        lld_invs = [["ld.lld", *MICRO_LDFLAGS, "-o", str(tmp / "micro.out"), f] for f in inputs]
        rd = ["llvm-readelf", "-r", *inputs]
        tools = [
            Tool("reachsolve-free", "reachsolve (free model)", "reachsolve", [a],
                 _q(rs + ["--format", "json", "-o", str(rj)]) + f" <{len(inputs)} fixtures>",
                 (0, 1), snap, env, reports=[rj]),
            Tool("ld.lld", "ld.lld, one link per fixture", "ld.lld", lld_invs,
                 _q(["ld.lld", *MICRO_LDFLAGS, "-o", str(tmp / "micro.out")]) +
                 f" X.o   (x{len(inputs)}, summed)", (0, 1)),
            Tool("llvm-readelf", "llvm-readelf -r", "llvm-readelf", [rd], _q(rd) + " >/dev/null"),
        ]
        notes.append("tests/fixtures/*.S assembled little-endian with clang "
                     "--target=aarch64-linux-gnu -I tests/fixtures (fixtures with '// defsym:' "
                     "lines then go through ld.lld -r --defsym, as tests/conftest.py does)")
        notes.append("the fixtures hold broken sites on purpose. --noinhibit-exec turns ld.lld's "
                     "out-of-range errors into warnings and --error-limit=0 keeps it going, but "
                     "some fixtures still end with exit status 1 (improper alignment, 'InputSection "
                     "too large for range extension thunk', and got.o's GOT_LD_PREL19, an 'unknown "
                     "relocation' to ld.lld 14); exit statuses 0 and 1 are both accepted")
    else:
        raise ValueError(name)
    return {"tools": tools, "inputs": inputs, "notes": notes, "subset": subset}


# --------------------------------------------------------------------------
# Running the rounds


def measure_once(tool: Tool, tmp: Path, rnd: int) -> dict:
    err_path = tmp / "stderr.txt"
    total = {"wall_s": 0.0, "user_s": 0.0, "sys_s": 0.0, "peak_rss_kib": 0}
    statuses: Counter = Counter()
    tree = None
    for argv in tool.invocations:
        with open(err_path, "wb") as err:
            r = run_child(argv, cwd=tool.cwd, env=tool.env, stdout=subprocess.DEVNULL, stderr=err,
                          sample_tree=tool.sample_tree, result_file=tmp / "rusage.txt")
        for k in ("wall_s", "user_s", "sys_s"):
            total[k] += r[k]
        total["peak_rss_kib"] = max(total["peak_rss_kib"], r["peak_rss_kib"])
        if r.get("tree_pss_kib") is not None:
            tree = max(tree or 0, r["tree_pss_kib"])
        statuses[r["status"]] += 1
        if r["status"] not in tool.ok_status and len(tool.unexpected) < 10:
            tail = err_path.read_text(errors="replace").splitlines()[-8:]
            tool.unexpected.append({"round": rnd, "status": r["status"],
                                    "command": _q(argv)[:400], "stderr_tail": tail})
            print(f"    ! {tool.key}: exit status {r['status']}: {_q(argv)[:200]}\n      "
                  + "\n      ".join(tail), flush=True)
    total["statuses"] = {str(k): v for k, v in sorted(statuses.items())}
    if tool.sample_tree:
        total["tree_pss_kib"] = tree
    total["round"] = rnd
    return total


def _warm(paths: list[str]) -> None:
    """Read the inputs once so that every round finds them in the page cache."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 20):
                pass


def _stats(values: list[float]) -> dict:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}


# --------------------------------------------------------------------------
# What reachsolve decided (streamed: element by element of "sites" and "proved")

_WS = re.compile(r"[ \t\n\r]*")


def _stream_report(path: Path, on_site, on_table=None) -> dict:
    """Parse a reachsolve JSON report; call on_site for each element of "sites" and
    on_table for each proof table of "proved", without keeping the lists; return the
    other top-level members."""
    text = path.read_text()
    dec = json.JSONDecoder()
    top: dict = {}

    def ws(i: int) -> int:
        return _WS.match(text, i).end()

    i = ws(0)
    if text[i] != "{":
        raise ValueError(f"{path}: not a JSON object")
    i = ws(i + 1)
    while text[i] != "}":
        key, i = dec.raw_decode(text, i)
        i = ws(i)
        assert text[i] == ":", path
        i = ws(i + 1)
        if key in ("sites", "proved"):
            each = on_site if key == "sites" else (on_table or (lambda t: None))
            assert text[i] == "[", path
            i = ws(i + 1)
            while text[i] != "]":
                site, i = dec.raw_decode(text, i)
                each(site)
                i = ws(i)
                if text[i] == ",":
                    i = ws(i + 1)
            i += 1
        else:
            top[key], i = dec.raw_decode(text, i)
        i = ws(i)
        if text[i] == ",":
            i = ws(i + 1)
    return top


def summarize_reports(paths: list[Path]) -> dict:
    by_type: dict = defaultdict(Counter)
    summary, decisions, not_checked = Counter(), Counter(), Counter()
    solver_calls = relocations = sections = nfiles = nsites = 0
    errors, model, version = [], None, None
    non_robust: list[dict] = []

    seen: dict = defaultdict(Counter)   # one report's sites as listed (schema 1 lists all)

    def on_site(s):
        seen[s["reloc"]][s["verdict"]] += 1
        if s["verdict"] != "robust" and len(non_robust) < 50:
            non_robust.append({k: s.get(k) for k in (
                "file", "section", "offset", "reloc", "symbol", "verdict", "margin")}
                | {"reason": (s.get("reason") or "")[:300]})

    proved = Counter()

    def on_table(t):
        names = t["reloc_names"]
        for r, n in Counter(t["columns"]["reloc"]).items():
            seen[names[str(r)]]["robust"] += n
        for k, n in Counter(t["columns"]["proof"]).items():
            proved[t["proof_kinds"][k]] += n

    for p in paths:
        seen.clear()
        top = _stream_report(p, on_site, on_table)
        files = top.get("files", [])
        if any("counts" in f for f in files):   # schema 2: per-file counts of every site
            seen.clear()
            for f in files:
                for reloc, per in f.get("counts", {}).items():
                    seen[reloc].update(per)
        for reloc, per in seen.items():
            by_type[reloc].update(per)
            nsites += sum(per.values())
        summary.update(top.get("summary", {}))
        solver_calls += top.get("solver_calls", 0)
        for f in top.get("files", []):
            nfiles += 1
            relocations += f.get("relocations", 0)
            sections += f.get("sections", 0)
            decisions.update(f.get("decisions", {}))
            not_checked.update(f.get("not_range_checked", {}))
        errors += top.get("errors", [])
        model = model or top.get("model")
        version = version or (top.get("tool") or {}).get("version")
    return {
        "summary": dict(sorted(summary.items())),
        "solver_calls": solver_calls,
        "decisions": dict(sorted(decisions.items())),
        "by_type": {t: dict(sorted(v.items())) for t, v in sorted(by_type.items())},
        "not_range_checked": dict(sorted(not_checked.items())),
        "sites": nsites, "proved_column_wise": dict(sorted(proved.items())),
        "files": nfiles, "relocations": relocations, "sections": sections,
        "errors": len(errors), "first_errors": errors[:5],
        "non_robust_sites": non_robust,
        "model": model, "reachsolve_version": version,
    }


def readelf_count(inputs: list[str]) -> int:
    n = 0
    for argv in [["llvm-readelf", "-r", *b] for b in _batches(["llvm-readelf", "-r"], inputs)]:
        with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as p:
            for line in p.stdout:
                if " R_AARCH64_" in line:
                    n += 1
    return n


# --------------------------------------------------------------------------
# Provenance


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def snapshot(dest: Path) -> dict:
    for sub in ("reachsolve", "models"):
        shutil.copytree(ROOT / sub, dest / sub,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dest / "reachsolve")],
                   check=True)

    def git(*a):
        try:
            return subprocess.run(["git", "--no-optional-locks", *a], cwd=ROOT, text=True,
                                  capture_output=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    return {"digest": _digest(dest / "reachsolve") + "/" + _digest(dest / "models"),
            "git_head": git("rev-parse", "HEAD"),
            "modified_vs_head": (git("status", "--porcelain", "--", "reachsolve", "models")
                                 or "").splitlines()}


def _version(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True).stdout
    except OSError:
        return None
    for line in out.splitlines():
        if "version" in line.lower() or "LLD" in line:
            return line.strip()
    return out.strip().splitlines()[0] if out.strip() else None


def machine() -> dict:
    mem = None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1])
    except OSError:
        pass
    cpu = None
    try:
        for line in open("/proc/cpuinfo"):
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "mem_total_kib": mem,
            "kernel": platform.release(), "python": platform.python_version(),
            "ld.lld": _version(["ld.lld", "--version"]),
            "llvm-readelf": _version(["llvm-readelf", "--version"])}


# --------------------------------------------------------------------------
# One corpus


def bench_corpus(name: str, args, tmp: Path, snap: Path, snapinfo: dict, mach: dict) -> dict | None:
    setup = setup_corpus(name, tmp, snap, args)
    if setup is None:
        print(f"[{name}] not built, skipped (build it with: python3 -m benchmarks.corpus {name})",
              flush=True)
        return None
    tools: list[Tool] = setup["tools"]
    inputs = setup["inputs"]
    print(f"[{name}] {len(inputs)} input file(s); {args.runs} round(s) of "
          f"{', '.join(t.key for t in tools)}", flush=True)
    _warm(inputs)
    load0 = os.getloadavg()
    t_start = time.monotonic()
    for rnd in range(args.runs):
        k = rnd % len(tools)
        for tool in tools[k:] + tools[:k]:
            r = measure_once(tool, tmp, rnd)
            tool.runs.append(r)
            extra = f", tree PSS {r['tree_pss_kib'] / 1024:.0f} MiB" \
                if r.get("tree_pss_kib") else ""
            print(f"  round {rnd + 1}/{args.runs} {tool.key:18} {r['wall_s']:9.3f} s  "
                  f"peak RSS {r['peak_rss_kib'] / 1024:8.1f} MiB{extra}  exit {r['statuses']}",
                  flush=True)
    elapsed = time.monotonic() - t_start
    load1 = os.getloadavg()

    result: dict = {
        "corpus": name, "date": args.date, "rounds": args.runs,
        "order": "interleaved; tool order rotates by one each round",
        "corpus_path": str(corpus_path(name)) if name != "micro" else str(FIXTURES),
        "inputs": {"files": len(inputs),
                   "bytes": sum(os.path.getsize(p) for p in inputs)},
        "subset": setup["subset"],
        "notes": setup["notes"],
        "machine": mach,
        "load_average": {"start": [round(x, 2) for x in load0],
                         "end": [round(x, 2) for x in load1]},
        "elapsed_s": round(elapsed, 1),
        "reachsolve_snapshot": snapinfo,
        "tools": {},
        "decided": {},
        "ratios": {},
    }
    for t in tools:
        entry = {
            "label": t.label, "kind": t.kind, "command": t.command,
            "invocations_per_run": len(t.invocations),
            "accepted_exit_statuses": list(t.ok_status),
            "runs": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                     for r in t.runs],
            "wall_s": _stats([r["wall_s"] for r in t.runs]),
            "cpu_s": _stats([r["user_s"] + r["sys_s"] for r in t.runs]),
            "peak_rss_kib": _stats([r["peak_rss_kib"] for r in t.runs]),
            "unexpected_exits": t.unexpected,
        }
        if t.sample_tree:
            entry["tree_pss_kib"] = _stats([r.get("tree_pss_kib") for r in t.runs])
        result["tools"][t.key] = entry
        if t.kind == "reachsolve":
            print(f"  summarizing {t.key} report of the last round ...", flush=True)
            result["decided"][t.key] = summarize_reports(t.reports)
    lld = result["tools"]["ld.lld"]
    for t in tools:
        if t.kind == "reachsolve":
            rs_ = result["tools"][t.key]
            ratio = {"time": rs_["wall_s"]["median"] / lld["wall_s"]["median"],
                     "peak_rss": rs_["peak_rss_kib"]["median"] / lld["peak_rss_kib"]["median"]}
            if rs_.get("tree_pss_kib"):
                ratio["tree_pss_vs_lld_peak_rss"] = \
                    rs_["tree_pss_kib"]["median"] / lld["peak_rss_kib"]["median"]
            result["ratios"][t.key] = {k: round(v, 2) for k, v in ratio.items()}
    for t in tools:
        if t.key.endswith("-nolines"):
            on, off = result["tools"][t.key[:-len("-nolines")]], result["tools"][t.key]
            result.setdefault("lines_cost", {})[t.key[:-len("-nolines")]] = round(
                on["wall_s"]["median"] / off["wall_s"]["median"], 3)
    rs_relocs = {d["relocations"] for d in result["decided"].values()}
    result["relocations"] = {
        "llvm-readelf": readelf_count(inputs),
        "reachsolve": sorted(rs_relocs)[0] if len(rs_relocs) == 1 else sorted(rs_relocs),
    }
    after = _digest(ROOT / "reachsolve") + "/" + _digest(ROOT / "models")
    result["reachsolve_snapshot"] = dict(snapinfo, working_tree_at_end=after,
                                         working_tree_changed=after != snapinfo["digest"])
    return result


def _round_floats(obj):
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: _round_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round_floats(v) for v in obj]
    return obj


# --------------------------------------------------------------------------
# Report: markdown and plot from all <date>-<corpus>.json


def load_results(out: Path, date: str) -> list[dict]:
    res = []
    for name in CORPORA:
        p = out / f"{date}-{name}.json"
        if p.is_file():
            res.append(json.loads(p.read_text()))
    return res


def _mib(kib) -> str:
    return f"{kib / 1024:,.0f}" if kib >= 10 * 1024 else f"{kib / 1024:,.1f}"


def _sec(s) -> str:
    return f"{s:,.1f}" if s >= 10 else (f"{s:.2f}" if s >= 0.1 else f"{s:.3f}")


TOOL_ORDER = ("reachsolve-script", "reachsolve-module", "reachsolve-free", "ld.lld",
              "llvm-readelf")


def _tool_order(key: str):
    return (TOOL_ORDER.index(key) if key in TOOL_ORDER else len(TOOL_ORDER), key)


def markdown(results: list[dict], date: str) -> str:
    L = [f"# reachsolve benchmarks, {date}", ""]
    if not results:
        return "\n".join(L + ["No results."]) + "\n"
    m = results[0]["machine"]
    L += [f"Machine: {m['cpus']} CPUs ({m.get('cpu') or 'unknown CPU'}), "
          f"{(m.get('mem_total_kib') or 0) / 1048576:.0f} GiB, Linux {m['kernel']}, "
          f"Python {m['python']}; {m['ld.lld']}; {m['llvm-readelf']}.", ""]
    snap = results[0]["reachsolve_snapshot"]
    L += [f"reachsolve snapshot {snap['digest']} (git HEAD {str(snap['git_head'])[:12]}"
          + (f", {len(snap['modified_vs_head'])} path(s) modified vs HEAD" if snap['modified_vs_head'] else "")
          + ").", ""]
    L += ["Wall time and peak RSS (ru_maxrss from wait4) per tool: median over the rounds, "
          "[min – max].", ""]
    L += ["| corpus | files | R_AARCH64 relocs | tool | wall s (median) | [min – max] | "
          "CPU s (median) | peak RSS MiB (median) | [min – max] |",
          "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        n = r["relocations"]["llvm-readelf"]
        files = f"{r['inputs']['files']:,}"
        if r.get("subset"):
            files += f" (every {r['subset']['every']}th of {r['subset']['of']:,})"
        first = True
        keys = sorted(r["tools"], key=_tool_order)
        for key in keys:
            t = r["tools"][key]
            w, s = t["wall_s"], t["peak_rss_kib"]
            rss = f"{_mib(s['median'])}"
            rng = f"[{_mib(s['min'])} – {_mib(s['max'])}]"
            if t.get("tree_pss_kib"):
                tp = t["tree_pss_kib"]
                rss += f" (tree PSS {_mib(tp['median'])})"
            label = t["label"]
            head = f"{r['corpus']} ({r['rounds']} runs)" if first else ""
            L.append(f"| {head} | "
                     f"{files if first else ''} | {f'{n:,}' if first else ''} | {label} | "
                     f"{_sec(w['median'])} | [{_sec(w['min'])} – {_sec(w['max'])}] | "
                     f"{_sec(t['cpu_s']['median'])} | {rss} | {rng} |")
            first = False
    L += ["", "Headline ratios, reachsolve / ld.lld (medians):", "",
          "| corpus | reachsolve run | time ratio | peak RSS ratio |",
          "| --- | --- | ---: | ---: |"]
    for r in results:
        for key, ratio in sorted(r["ratios"].items(), key=lambda kv: _tool_order(kv[0])):
            rss = f"{ratio['peak_rss']:.1f}×"
            if "tree_pss_vs_lld_peak_rss" in ratio:
                rss += f" (tree PSS: {ratio['tree_pss_vs_lld_peak_rss']:.1f}×)"
            L.append(f"| {r['corpus']} | {r['tools'][key]['label']} | {ratio['time']:.1f}× | {rss} |")
    costs = [(r, k, v) for r in results for k, v in sorted(r.get("lines_cost", {}).items())]
    if costs:
        L += ["", "Cost of source lines (DWARF), wall time with lines / without (medians):", "",
              "| corpus | reachsolve run | with / without |", "| --- | --- | ---: |"]
        L += [f"| {r['corpus']} | {r['tools'][k]['label']} | {v:.3f}× |" for r, k, v in costs]
    L += ["", "What reachsolve decided (report of the last round):", "",
          "| corpus | reachsolve run | sites | robust | vulnerable | broken | unknown | "
          "solver calls | decisions | input errors |",
          "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in results:
        for key, d in sorted(r["decided"].items(), key=lambda kv: _tool_order(kv[0])):
            s = d["summary"]
            dec = ", ".join(f"{k}: {v:,}" for k, v in d["decisions"].items())
            L.append(f"| {r['corpus']} | {r['tools'][key]['label']} | {d['sites']:,} | "
                     f"{s.get('robust', 0):,} | {s.get('vulnerable', 0):,} | "
                     f"{s.get('broken', 0):,} | {s.get('unknown', 0):,} | "
                     f"{d['solver_calls']:,} | {dec} | {d['errors']} |")
    L += ["", "Sites per relocation type and verdict (r robust, v vulnerable, b broken, "
          "u unknown), last round:", ""]
    for r in results:
        for key, d in sorted(r["decided"].items(), key=lambda kv: _tool_order(kv[0])):
            parts = []
            for typ, v in d["by_type"].items():
                vv = " ".join(f"{k[0]}{n:,}" for k, n in v.items())
                parts.append(f"{typ.replace('R_AARCH64_', '')} {vv}")
            L.append(f"- {r['corpus']}, {r['tools'][key]['label']}: " + "; ".join(parts))
    L += ["", "Sites that are not robust (at most 10 per run; the JSON keeps up to 50):", ""]
    for r in results:
        for key, d in sorted(r["decided"].items(), key=lambda kv: _tool_order(kv[0])):
            rows = d.get("non_robust_sites") or []
            if not rows:
                continue
            L.append(f"- {r['corpus']}, {r['tools'][key]['label']}:")
            for x in rows[:10]:
                margin = f", margin {x['margin']:#x}" if x.get("margin") is not None else ""
                L.append(f"  - {x['verdict']}: {Path(x['file']).name} {x['section']}+{x['offset']:#x} "
                         f"{x['reloc'].replace('R_AARCH64_', '')} → {x['symbol']}{margin}")
            if len(rows) > 10:
                L.append(f"  - … {sum(v for k, v in d['summary'].items() if k != 'robust') - 10} more")
    L += ["", "Notes:", ""]
    for r in results:
        la = r["load_average"]
        L.append(f"- {r['corpus']}: load average {la['start'][0]:.1f} at start, "
                 f"{la['end'][0]:.1f} at end; {r['elapsed_s']:.0f} s for all rounds.")
        if r["relocations"]["llvm-readelf"] != r["relocations"]["reachsolve"]:
            L.append(f"- {r['corpus']}: llvm-readelf counts {r['relocations']['llvm-readelf']:,} "
                     f"R_AARCH64 relocations, reachsolve {r['relocations']['reachsolve']}.")
        for n in r["notes"]:
            L.append(f"- {r['corpus']}: {n}")
        for key, t in r["tools"].items():
            if t["unexpected_exits"]:
                L.append(f"- {r['corpus']}: {key} had unexpected exit statuses, e.g. "
                         f"{t['unexpected_exits'][0]['status']}")
        if r["reachsolve_snapshot"].get("working_tree_changed"):
            L.append(f"- {r['corpus']}: reachsolve/ in the working tree changed during the run; "
                     "the snapshot taken at start was measured.")
    return "\n".join(L) + "\n"


SERIES = (  # (tool key, label, marker, colour)
    ("reachsolve-script", "reachsolve, --linker-script vmlinux.lds", "o", "tab:blue"),
    ("reachsolve-free", "reachsolve, free model", "s", "tab:cyan"),
    ("reachsolve-module", "reachsolve, arm64-module model, --jobs 2", "D", "tab:purple"),
    ("ld.lld", "ld.lld", "^", "tab:orange"),
    ("llvm-readelf", "llvm-readelf -r", "x", "tab:gray"),
)


def plot(results: list[dict], path: Path, date: str) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib); no plot written",
              file=sys.stderr)
        return False
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6))
    for ax, metric, scale, ylabel in (
            (axes[0], "wall_s", 1.0, "wall time, s (median; bars: min–max)"),
            (axes[1], "peak_rss_kib", 1 / 1024, "peak RSS, MiB (median; bars: min–max)")):
        for key, label, marker, colour in SERIES:
            xs, ys, lo, hi, names = [], [], [], [], []
            for r in results:
                t = r["tools"].get(key)
                if not t:
                    continue
                if key == "reachsolve-module":
                    label = "reachsolve, " + t["label"].replace("reachsolve ", "")
                st = t[metric]
                xs.append(r["relocations"]["llvm-readelf"])
                ys.append(st["median"] * scale)
                lo.append((st["median"] - st["min"]) * scale)
                hi.append((st["max"] - st["median"]) * scale)
                names.append(r["corpus"])
            if not xs:
                continue
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt=marker, color=colour, label=label,
                        markersize=7, capsize=3, linestyle="none",
                        markerfacecolor="none" if marker in ("s", "D") else colour)
            if metric == "peak_rss_kib" and key == "reachsolve-module":
                tx, ty = [], []
                for r in results:
                    tp = r["tools"].get(key, {}).get("tree_pss_kib")
                    if tp:
                        tx.append(r["relocations"]["llvm-readelf"])
                        ty.append(tp["median"] * scale)
                if tx:
                    ax.plot(tx, ty, "*", color="tab:purple", markersize=10,
                            label="reachsolve --jobs 2, whole process tree (PSS)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:,.6g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(FuncFormatter(
            lambda v, _: f"{v:,.6g}" if f"{v:.0e}"[0] in "25" else ""))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_xlabel("R_AARCH64 relocations in the corpus (llvm-readelf -r)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        # corpus names along the top, once per distinct x
        seen: dict[int, list[str]] = defaultdict(list)
        for r in results:
            seen[r["relocations"]["llvm-readelf"]].append(
                r["corpus"] + (f" (1/{r['subset']['every']})" if r.get("subset") else ""))
        xs_sorted = sorted(seen)
        merged: list[tuple[float, str]] = []
        for x in xs_sorted:
            if merged and x / merged[-1][0] < 1.3:
                merged[-1] = (merged[-1][0], merged[-1][1] + " / " + " / ".join(seen[x]))
            else:
                merged.append((x, " / ".join(seen[x])))
        for x, text in merged:
            ax.axvline(x, color="k", alpha=0.12, linewidth=1)
            ax.annotate(text, (x, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(0, 4), textcoords="offset points", ha="center", fontsize=9)
        lo_x, hi_x = min(seen), max(seen)
        ax.set_xlim(lo_x / 3, hi_x * 3)
    axes[0].set_title("time against size", pad=18)
    axes[1].set_title("peak memory against size", pad=18)
    handles, labels = [], []
    for ax in axes:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, 0.035))
    foot = []
    for r in results:
        n = r["tools"]["ld.lld"]["invocations_per_run"]
        if n > 1:
            foot.append(f"{r['corpus']}: ld.lld = sum of {n:,} links, one per file")
    if foot:
        fig.text(0.5, 0.008, "; ".join(foot) + ".  Peak RSS = ru_maxrss (largest single process).",
                 ha="center", fontsize=8, color="0.3")
    fig.suptitle(f"reachsolve vs ld.lld, {date}", fontsize=12)
    fig.tight_layout(rect=(0, 0.13, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(out: Path, date: str) -> None:
    results = load_results(out, date)
    md = out / f"{date}.md"
    md.write_text(markdown(results, date))
    print(f"wrote {md}", flush=True)
    png = out / f"{date}.png"
    if results and plot(results, png, date):
        print(f"wrote {png}", flush=True)


# --------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m benchmarks",
                                 description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--runs", type=int, default=5, help="rounds per corpus (default 5)")
    ap.add_argument("--corpus", default=",".join(CORPORA),
                    help=f"comma-separated, from {','.join(CORPORA)} (default: all)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--jobs", type=int, default=2,
                    help="reachsolve --jobs (default 2): objects in parallel for modules and openblas, "
                         "threads within the one object of a kernel corpus")
    ap.add_argument("--modules-every", type=int, default=1, metavar="K",
                    help="modules: measure every K-th module of modules.txt only (default 1: all)")
    ap.add_argument("--date", default=_dt.date.today().isoformat(),
                    help="date in the result file names (default: today)")
    ap.add_argument("--report-only", action="store_true",
                    help="only rebuild <date>.md and <date>.png from the JSON files in --out")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.corpus.split(",") if n.strip()]
    bad = [n for n in names if n not in CORPORA]
    if bad or args.runs < 1 or args.modules_every < 1:
        ap.error(f"unknown corpus {', '.join(bad)}" if bad else "--runs and --modules-every must be >= 1")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        write_report(args.out, args.date)
        return 0
    missing = [t for t in ("ld.lld", "llvm-readelf") + (("clang",) if "micro" in names else ())
               if shutil.which(t) is None]
    if missing:
        print(f"missing tools: {', '.join(missing)}", file=sys.stderr)
        return 2
    mach = machine()
    wrote = 0

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    with tempfile.TemporaryDirectory(prefix="reachsolve-bench-") as d:
        tmp = Path(d)
        mach["measurement"] = build_launcher(tmp)
        snap = tmp / "snapshot"
        snapinfo = snapshot(snap)
        print(f"reachsolve snapshot {snapinfo['digest']} in {snap}", flush=True)
        try:
            for name in names:
                res = bench_corpus(name, args, tmp, snap, snapinfo, mach)
                if res is None:
                    continue
                path = args.out / f"{args.date}-{name}.json"
                path.write_text(json.dumps(_round_floats(res), indent=1, sort_keys=True) + "\n")
                print(f"[{name}] wrote {path}", flush=True)
                wrote += 1
        except KeyboardInterrupt:
            kill_current()
            print("interrupted; the corpora finished so far are written", file=sys.stderr)
            return 130
    write_report(args.out, args.date)
    return 0 if wrote else 1


if __name__ == "__main__":
    sys.exit(main())
