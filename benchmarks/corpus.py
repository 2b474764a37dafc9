#!/usr/bin/env python3
"""Build or fetch the large AArch64 corpora that reachsolve is benchmarked on.

Usage (from the repository root)::

    python3 -m benchmarks.corpus tiny          # arm64 tinyconfig+KVM+ThinLTO kernel
    python3 -m benchmarks.corpus tiny-prefix   # same, entry.S patched to the 2021 form
    python3 -m benchmarks.corpus tiny-debug    # tiny with DWARF 4 (source lines)
    python3 -m benchmarks.corpus tiny-debug-prefix  # and its pre-fix entry.S
    python3 -m benchmarks.corpus modules       # every .ko of Debian's arm64 6.1 image
    python3 -m benchmarks.corpus openblas      # Debian's arm64 libopenblas.a (static archive)
    python3 -m benchmarks.corpus openblas-loose  # its members as separate files
    python3 -m benchmarks.corpus status        # what is built, and how long it took

Corpora live in ``$REACHSOLVE_CORPUS`` (default ``~/.cache/reachsolve-corpus``).
Every step writes a stamp file under ``<cache>/stamps/`` when it finishes; a step
whose stamp exists is skipped, so an interrupted run is resumed by running the
same command again.  Delete a stamp (or the whole cache) to redo a step.

Only the standard library is used; the heavy lifting is done by apt-get,
dpkg-deb, tar, make, clang/ld.lld and patch.  See benchmarks/README.md.

From Python::

    from benchmarks.corpus import corpus_path
    corpus_path("tiny")      # Path(<cache>/tiny) or None when not built
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import getpass
import gzip
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable

# --------------------------------------------------------------------------
# Constants

SOURCE_PACKAGE = "linux-source-6.1"
SOURCE_TARBALL_GLOB = "usr/src/linux-source-6.1.tar.*"
IMAGE_PACKAGE_RE = r"^linux-image-6\.1\.0-[0-9]+-arm64-unsigned$"

#: Debian packages the kernel build needs (the tools, not the kernel itself).
#: flex/bison: Kconfig and dtc parsers; bc: timeconst.h; libssl-dev: certificate
#: and signing host tools; libelf-dev: objtool/resolve_btfids host tools;
#: clang/lld/llvm: the LLVM=1 toolchain (clang, ld.lld, llvm-ar, llvm-nm,
#: llvm-objcopy, ...; with LLVM=1 the host tools are built by clang too, so gcc
#: is not needed, but libc6-dev is); xz-utils: the source tarball; patch:
#: tiny-prefix; perl and python3: scripts run during the build.
KERNEL_BUILD_PACKAGES = (
    "make", "libc6-dev", "flex", "bison", "bc", "libssl-dev", "libelf-dev",
    "clang", "lld", "llvm", "xz-utils", "patch", "perl", "python3",
)

#: Kconfig options switched on over tinyconfig (scripts/config syntax).
CONFIG_ENABLE = ("VIRTUALIZATION", "KVM", "LTO_CLANG_THIN")
CONFIG_DISABLE = ("LTO_NONE",)
#: Per kernel corpus: the base config, options switched on, options switched off.
#: big folds every defconfig module into vmlinux (MODULES=n): about 70 minutes on
#: 2 cores and a ~150 MB vmlinux.o; defconfig builds only the built-in part.
KERNELS = {
    "tiny": ("tinyconfig", CONFIG_ENABLE, CONFIG_DISABLE),
    "big": ("defconfig", ("LTO_CLANG_THIN", "DEBUG_INFO_NONE"),
            ("LTO_NONE", "MODULES", "DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT", "DEBUG_INFO_DWARF4",
             "DEBUG_INFO_DWARF5")),
    "defconfig": ("defconfig", ("LTO_CLANG_THIN",), ("LTO_NONE",)),
    # tiny with DWARF 4 line tables, for source file:line on findings (tinyconfig
    # already has DEBUG_KERNEL, on which the debug-information choice depends).
    "tiny-debug": ("tinyconfig", CONFIG_ENABLE + ("DEBUG_INFO_DWARF4",),
                   CONFIG_DISABLE + ("DEBUG_INFO_NONE",)),
}
#: Options a corpus needs beyond CONFIG_REQUIRED (a -prefix corpus: its base's).
CONFIG_REQUIRED_EXTRA = {"tiny-debug": ("CONFIG_DEBUG_INFO", "CONFIG_DEBUG_INFO_DWARF4")}
#: What the final .config must say, or the build is refused.
CONFIG_REQUIRED = (
    "CONFIG_CC_IS_CLANG", "CONFIG_LD_IS_LLD", "CONFIG_AS_IS_LLVM",
    "CONFIG_VIRTUALIZATION", "CONFIG_KVM",
    "CONFIG_LTO", "CONFIG_LTO_CLANG", "CONFIG_LTO_CLANG_THIN",
)
#: Printed when LTO did not come out enabled, to show which dependency failed.
LTO_DIAGNOSTIC = (
    "CONFIG_CC_IS_CLANG", "CONFIG_CLANG_VERSION", "CONFIG_LD_IS_LLD", "CONFIG_AS_IS_LLVM",
    "CONFIG_HAS_LTO_CLANG", "CONFIG_ARCH_SUPPORTS_LTO_CLANG",
    "CONFIG_ARCH_SUPPORTS_LTO_CLANG_THIN", "CONFIG_LTO_NONE", "CONFIG_LTO_CLANG",
    "CONFIG_LTO_CLANG_THIN", "CONFIG_LTO_CLANG_FULL", "CONFIG_CPU_LITTLE_ENDIAN",
    "CONFIG_FTRACE_MCOUNT_USE_RECORDMCOUNT", "CONFIG_KASAN", "CONFIG_GCOV_KERNEL",
)

KMAKE = ("make", "ARCH=arm64", "LLVM=1")
BUILD_TARGET = "vmlinux"
JOBS = int(os.environ.get("REACHSOLVE_CORPUS_JOBS", "3"))

HERE = Path(__file__).resolve().parent
PREFIX_PATCH = HERE / "prefix-entry.patch"
PATCHED_FILE = "arch/arm64/kvm/hyp/entry.S"

# The corpus names and where a finished corpus lives are shared with the tests:
# testsupport/corpora.py (the repository root goes on the path so that
# ``python3 benchmarks/corpus.py`` finds it as ``python3 -m benchmarks.corpus`` does).
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))
from testsupport.corpora import CORPORA, FINAL_STEP, cache_dir, corpus_path  # noqa: E402,F401
from testsupport.corpora import stamp_path as _stamp  # noqa: E402


class CorpusError(RuntimeError):
    """A step failed; the message says what and why."""


# --------------------------------------------------------------------------
# Locations (cache_dir, corpus_path and _stamp come from testsupport.corpora, above)


def _work() -> Path:
    return cache_dir() / "work"


def _tree(name: str) -> Path:
    """The kernel source+build tree of a corpus (in-tree build)."""
    return _work() / f"linux-{name}"


# --------------------------------------------------------------------------
# Helpers


def _fmt(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(seconds, 60)
    return f"{int(m)} min {s:04.1f} s ({seconds:.0f} s)"


def _log(corpus: str, msg: str) -> None:
    print(f"[{corpus}] {msg}", flush=True)


def _step(corpus: str, name: str, fn: Callable[[], object], *, stamped: bool = True):
    """Run step *fn* unless its stamp exists; time it; write the stamp."""
    stamp = _stamp(corpus, name)
    if stamped and stamp.is_file():
        data = json.loads(stamp.read_text())
        _log(corpus, f"step {name}: already done (took {_fmt(data['seconds'])} on "
                     f"{data['finished']}), skipped")
        return data.get("result")
    _log(corpus, f"step {name}: start")
    t0 = time.monotonic()
    result = fn()
    seconds = time.monotonic() - t0
    if stamped:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_suffix(".tmp")
        tmp.write_text(json.dumps({
            "seconds": round(seconds, 2),
            "finished": _dt.datetime.now().isoformat(timespec="seconds"),
            "result": result,
        }, indent=1) + "\n")
        tmp.replace(stamp)
    _log(corpus, f"step {name}: done in {_fmt(seconds)}")
    return result


def _run(cmd: Iterable[str], *, cwd: Path | None = None, env: dict | None = None,
         capture: bool = False, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(c) for c in cmd]
    shown = " ".join(cmd)
    private = " ".join(_apt_opts())
    if private in shown:  # the private arm64 apt options are long: abbreviate
        shown = shown.replace(private, "<private arm64 apt options>")
    print("  $ " + shown + (f"    (in {cwd})" if cwd else ""), flush=True)
    proc = subprocess.run(cmd, cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.STDOUT if capture else None)
    if check and proc.returncode != 0:
        tail = ""
        if capture and proc.stdout:
            tail = "\n" + "\n".join(proc.stdout.splitlines()[-40:])
        raise CorpusError(f"command failed with exit status {proc.returncode}: "
                          f"{' '.join(cmd)}{tail}")
    return proc


def _sudo() -> list[str]:
    return [] if os.geteuid() == 0 else ["sudo"]


def _rmtree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _dpkg_installed(pkg: str) -> bool:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return proc.returncode == 0 and "install ok installed" in proc.stdout


def _ensure_packages(corpus: str, packages: Iterable[str]) -> list[str]:
    """apt-get install whichever of *packages* is missing; return those."""
    missing = [p for p in packages if not _dpkg_installed(p)]
    if not missing:
        _log(corpus, "all needed Debian packages are installed")
        return []
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = _sudo() + ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if _run(install, env=env, check=False).returncode != 0:
        _run(_sudo() + ["apt-get", "update"], env=env)
        _run(install, env=env)
    return missing


def _deb_field(deb: Path, field: str) -> str:
    return _run(["dpkg-deb", "-f", deb, field], capture=True).stdout.strip()


def _read_config(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^(CONFIG_\w+)=(.*)$", line)
        if m:
            values[m.group(1)] = m.group(2)
        m = re.match(r"^# (CONFIG_\w+) is not set$", line)
        if m:
            values[m.group(1)] = "n"
    return values


def _elf_stats(obj: Path) -> dict:
    """Size, section count and R_AARCH64 relocation count of an ELF file."""
    hdr = _run(["llvm-readelf", "--file-header", obj], capture=True).stdout
    # Over 65,279 sections e_shnum is 0 and readelf prints "0 (277030)" (gABI extended numbering).
    m = re.search(r"Number of section headers:\s+(\d+)(?:\s+\((\d+)\))?", hdr)
    sections = int(m.group(2) or m.group(1)) if m else None
    relocs = 0
    with subprocess.Popen(["llvm-readelf", "-r", str(obj)], text=True,
                          stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "R_AARCH64" in line:
                relocs += 1
    if proc.returncode != 0:
        raise CorpusError(f"llvm-readelf -r {obj} failed ({proc.returncode})")
    return {"bytes": obj.stat().st_size, "sections": sections,
            "r_aarch64_relocations": relocs}


# --------------------------------------------------------------------------
# The kernel source (shared by tiny and tiny-prefix)


def _download_source() -> str:
    dl = cache_dir() / "downloads"
    dl.mkdir(parents=True, exist_ok=True)
    for stale in dl.glob(f"{SOURCE_PACKAGE}_*.deb"):  # unfinished earlier try
        stale.unlink()
    cmd = ["apt-get", "download", SOURCE_PACKAGE]
    if _run(cmd, cwd=dl, check=False).returncode != 0:
        _run(_sudo() + ["apt-get", "update"])
        _run(cmd, cwd=dl)
    debs = sorted(dl.glob(f"{SOURCE_PACKAGE}_*.deb"))
    if len(debs) != 1:
        raise CorpusError(f"expected one {SOURCE_PACKAGE} .deb in {dl}, found {debs}")
    _run(["dpkg-deb", "--info", debs[0]], capture=True)  # is it a whole .deb?
    return str(debs[0])


def _unpack_source_deb(deb: str) -> str:
    dest = _extract_deb(deb, "linux-source-deb")
    tarballs = sorted(dest.glob(SOURCE_TARBALL_GLOB))
    if len(tarballs) != 1:
        raise CorpusError(f"expected one {SOURCE_TARBALL_GLOB} in {deb}, found {tarballs}")
    return str(tarballs[0])


def _extract_source(tarball: str, tree: Path) -> None:
    tmp = tree.with_name(tree.name + ".extract")
    _rmtree(tmp)
    _rmtree(tree)
    tmp.mkdir(parents=True)
    _run(["tar", "-xf", tarball, "-C", tmp])
    tops = [p for p in tmp.iterdir()]
    if len(tops) != 1 or not (tops[0] / "Makefile").is_file():
        raise CorpusError(f"unexpected tarball layout in {tarball}: {tops}")
    tops[0].rename(tree)
    tmp.rmdir()


def _configure(tree: Path, corpus: str = "tiny") -> dict:
    base, enable, disable = KERNELS[corpus]
    _run([*KMAKE, base], cwd=tree)
    cfg = ["scripts/config", "--file", ".config"]
    for opt in enable:
        cfg += ["--enable", opt]
    for opt in disable:
        cfg += ["--disable", opt]
    _run(cfg, cwd=tree)
    _run([*KMAKE, "olddefconfig"], cwd=tree)
    return _check_config(tree, corpus)


def _check_config(tree: Path, corpus: str = "tiny") -> dict:
    values = _read_config(tree / ".config")
    required = CONFIG_REQUIRED + CONFIG_REQUIRED_EXTRA.get(corpus.removesuffix("-prefix"), ())
    extra = [k for k in required[len(CONFIG_REQUIRED):] if values.get(k) != "y"]
    if extra:
        raise CorpusError(f"{tree}/.config lacks {', '.join(extra)} after olddefconfig")
    bad = [k for k in CONFIG_REQUIRED if values.get(k) != "y"]
    if bad:
        diag = "\n".join(f"    {k}={values.get(k, '(absent)')}" for k in LTO_DIAGNOSTIC)
        raise CorpusError(
            f"{tree}/.config lacks {', '.join(bad)} after olddefconfig; the options "
            f"behind LTO are:\n{diag}\n(ThinLTO needs CC_IS_CLANG, LD_IS_LLD, AS_IS_LLVM, "
            f"llvm-nm/llvm-ar as NM/AR, i.e. make ... LLVM=1)")
    return {k: values[k] for k in required}


def _build(tree: Path) -> None:
    _run([*KMAKE, f"-j{JOBS}", BUILD_TARGET], cwd=tree)
    if not (tree / "vmlinux.o").is_file():
        raise CorpusError(f"make {BUILD_TARGET} finished but {tree}/vmlinux.o is missing")


def _check_lto_objects(tree: Path) -> None:
    """With ThinLTO the compiled C objects are LLVM bitcode, not ELF."""
    obj = tree / "init" / "main.o"
    magic = obj.read_bytes()[:4]
    if magic != b"BC\xc0\xde":
        raise CorpusError(f"{obj} is not LLVM bitcode (magic {magic!r}): LTO did not take")


def _collect_kernel(corpus: str, tree: Path, extra: dict) -> dict:
    out = cache_dir() / corpus
    base = corpus.removesuffix("-prefix")  # a -prefix tree has its base's configuration
    _rmtree(out)
    out.mkdir(parents=True)
    lds = tree / "arch" / "arm64" / "kernel" / "vmlinux.lds"
    for src, dst in ((tree / "vmlinux.o", "vmlinux.o"), (lds, "vmlinux.lds"),
                     (tree / ".config", "config")):
        if not src.is_file():
            raise CorpusError(f"{src} is missing")
        shutil.copy2(src, out / dst)
    info = {
        "corpus": corpus,
        "tree": str(tree),
        "source_package": extra.get("source_package"),
        "make": f"{' '.join(KMAKE)} -j{JOBS} {BUILD_TARGET}",
        "config": f"{KERNELS[base][0]} + {', '.join('CONFIG_' + o + '=y' for o in KERNELS[base][1])}",
        "clang": _run(["clang", "--version"], capture=True).stdout.splitlines()[0],
        "vmlinux.o": _elf_stats(out / "vmlinux.o"),
        **{k: v for k, v in extra.items() if k != "source_package"},
    }
    (out / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    _log(corpus, f"vmlinux.o: {info['vmlinux.o']}")
    return info["vmlinux.o"]


def _source_steps(corpus: str) -> str:
    """Download and unpack linux-source-6.1; return the tarball path."""
    deb = _step("source", "download", _download_source)
    return _step("source", "unpack-deb", lambda: _unpack_source_deb(deb))


def build_tiny() -> Path:
    return build_kernel("tiny")


def build_kernel(corpus: str) -> Path:
    """Configure (KERNELS[corpus]) and build one kernel tree; keep vmlinux.o and vmlinux.lds."""
    tree = _tree(corpus)
    _step(corpus, "packages", lambda: _ensure_packages(corpus, KERNEL_BUILD_PACKAGES),
          stamped=False)
    tarball = _source_steps(corpus)
    _step(corpus, "extract", lambda: _extract_source(tarball, tree))
    _step(corpus, "configure", lambda: _configure(tree, corpus))
    _step(corpus, "build", lambda: (_check_config(tree, corpus), _build(tree),
                                    _check_lto_objects(tree))[0])
    deb = json.loads(_stamp("source", "download").read_text())["result"]
    _step(corpus, "collect", lambda: _collect_kernel(corpus, tree, {
        "source_package": f"{SOURCE_PACKAGE} {_deb_field(Path(deb), 'Version')}"}))
    return cache_dir() / corpus


# --------------------------------------------------------------------------
# tiny-prefix: the same tree with entry.S as before the 2021 range fix


def _copy_tree(src: Path, dst: Path) -> None:
    _rmtree(dst)
    # cp -a keeps the timestamps, so make in the copy rebuilds only what the
    # patch touches (the in-tree build records relative paths only).
    _run(["cp", "-a", "--reflink=auto", src, dst])


def _apply_prefix_patch(tree: Path) -> str:
    if not PREFIX_PATCH.is_file():
        raise CorpusError(f"{PREFIX_PATCH} is missing")
    # -f: without it patch spots an unapplied patch, "ignores -R" and succeeds.
    rev = subprocess.run(["patch", "-p1", "-R", "--dry-run", "-f", "-s", "-i",
                          str(PREFIX_PATCH)], cwd=tree, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    if rev.returncode == 0:
        result = "already applied"
    else:
        _run(["patch", "-p1", "--forward", "--batch", "-i", PREFIX_PATCH], cwd=tree)
        result = "applied"
    text = (tree / PATCHED_FILE).read_text()
    if not re.search(r"^\s*cbz\s+x0,\s*hyp_panic\s*$", text, re.M) or \
            not re.search(r"^\s*adr\s+x1,\s*hyp_panic\s*$", text, re.M):
        raise CorpusError(f"{tree}/{PATCHED_FILE} does not read as patched after patch")
    return result


def _check_prefix_relocs(tree: Path) -> list[str]:
    """vmlinux.o must hold CONDBR19 and ADR_PREL_LO21 relocations to hyp_panic."""
    out = _run(["llvm-readelf", "-r", tree / "vmlinux.o"], capture=True).stdout
    sym = re.compile(r"\s(?:__kvm_nvhe_)?hyp_panic(?:\s|$)")
    hits = [line.strip() for line in out.splitlines() if sym.search(line)]
    found = {t: [h for h in hits if t in h.split()]
             for t in ("R_AARCH64_CONDBR19", "R_AARCH64_ADR_PREL_LO21")}
    missing = [t for t, v in found.items() if not v]
    if missing:
        raise CorpusError(
            f"{tree}/vmlinux.o has no {' / '.join(missing)} relocation against hyp_panic; "
            f"relocations against hyp_panic are:\n" + "\n".join(hits))
    lines = [line for v in found.values() for line in v]  # VHE and nVHE copies
    for line in lines:
        print("    " + line, flush=True)
    return lines


def build_prefix(base: str) -> Path:
    """``<base>-prefix``: the ``base`` kernel tree copied, entry.S patched, rebuilt incrementally."""
    corpus = f"{base}-prefix"
    BUILDERS[base]()
    src, tree = _tree(base), _tree(corpus)
    _step(corpus, "packages", lambda: _ensure_packages(corpus, KERNEL_BUILD_PACKAGES),
          stamped=False)
    _step(corpus, "copy-tree", lambda: _copy_tree(src, tree))
    _step(corpus, "patch", lambda: _apply_prefix_patch(tree))
    _step(corpus, "build", lambda: (_check_config(tree, corpus), _build(tree))[0])
    relocs = _step(corpus, "verify", lambda: _check_prefix_relocs(tree))
    deb = json.loads(_stamp("source", "download").read_text())["result"]
    _step(corpus, "collect", lambda: _collect_kernel(corpus, tree, {
        "source_package": f"{SOURCE_PACKAGE} {_deb_field(Path(deb), 'Version')}",
        "patch": PREFIX_PATCH.name, "hyp_panic_relocations": relocs}))
    return cache_dir() / corpus


# --------------------------------------------------------------------------
# modules: Debian's arm64 kernel image, fetched with a private apt state


def _apt_dir() -> Path:
    return cache_dir() / "apt"


def _apt_opts() -> list[str]:
    a = _apt_dir()
    user = "root" if os.geteuid() == 0 else getpass.getuser()
    opts = {
        "APT::Architecture": "arm64",
        "APT::Architectures": "arm64",
        "Dir::Etc::SourceList": a / "sources.list",
        "Dir::Etc::SourceParts": a / "sources.list.d",
        "Dir::Etc::Preferences": a / "preferences",
        "Dir::Etc::PreferencesParts": a / "preferences.d",
        "Dir::State": a / "state",
        "Dir::State::Lists": a / "lists",
        "Dir::State::status": a / "state" / "status",
        "Dir::Cache": a / "cache",
        "Dir::Cache::archives": a / "cache" / "archives",
        "APT::Sandbox::User": user,
        "Debug::NoLocking": "true" if os.geteuid() != 0 else "false",
    }
    return [x for k, v in opts.items() for x in ("-o", f"{k}={v}")]


def _apt_env() -> dict:
    """Environment for the private arm64 apt: APT_CONFIG points at a config whose
    apt.conf.d is a copy of the host's without hooks (no Post-Invoke or
    Pre-Install-Pkgs scripts run), so proxies and Check-Valid-Until still apply
    but nothing on the host is notified or touched."""
    a = _apt_dir()
    parts = a / "apt.conf.d"
    parts.mkdir(parents=True, exist_ok=True)
    for old in parts.iterdir():
        old.unlink()
    host = Path("/etc/apt/apt.conf.d")
    if host.is_dir():
        for f in sorted(host.iterdir()):
            try:
                text = f.read_text()
            except (OSError, UnicodeDecodeError):
                continue
            if f.is_file() and "Invoke" not in text and "Pre-Install-Pkgs" not in text:
                (parts / f.name).write_text(text)
    conf = a / "apt.conf"
    conf.write_text(f'Dir::Etc::Parts "{parts}/";\n')
    return dict(os.environ, APT_CONFIG=str(conf))


def _host_debian_sources() -> list[tuple[str, str, list[str], str | None]]:
    """(uri, suite, components, signed_by) of the host's Debian archive entries.

    Read from /etc/apt/sources.list(.d) so that the private arm64 apt setup uses
    the same mirrors the host does.
    """
    entries: list[tuple[str, str, list[str], str | None]] = []
    etc = Path("/etc/apt")
    deb822 = sorted((etc / "sources.list.d").glob("*.sources"))
    for path in deb822:
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, str] = {}
            key = None
            for line in stanza.splitlines():
                if line.startswith("#") or not line.strip():
                    continue
                if line[0] in " \t" and key:
                    fields[key] += " " + line.strip()
                    continue
                if ":" in line:
                    key, _, val = line.partition(":")
                    key = key.strip().lower()
                    fields[key] = val.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    entries.append((uri, suite, fields.get("components", "").split(),
                                    fields.get("signed-by")))
    lists = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            m = re.match(r"^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
            if not m:
                continue
            opts = dict(o.split("=", 1) for o in (m.group(1) or "").split() if "=" in o)
            entries.append((m.group(2), m.group(3), m.group(4).split(),
                            opts.get("signed-by")))

    def is_debian(e) -> bool:
        uri, _, _, signed = e
        path = re.sub(r"^[a-z+]+://[^/]*", "", uri).rstrip("/")
        return (path.endswith("/debian") or path.endswith("/debian-security")
                or bool(signed and "debian-archive-keyring" in signed))

    return [e for e in entries if is_debian(e)]


def _apt_update() -> dict:
    a = _apt_dir()
    for sub in ("sources.list.d", "preferences.d", "state", "lists/partial",
                "cache/archives/partial"):
        (a / sub).mkdir(parents=True, exist_ok=True)
    (a / "state" / "status").touch()
    sources = _host_debian_sources()
    if not sources:
        raise CorpusError("found no Debian archive entry in /etc/apt/sources.list(.d) "
                          "to derive the arm64 package index from")
    lines = []
    for uri, suite, comps, signed in sources:
        opt = "arch=arm64" + (f" signed-by={signed}" if signed else "")
        lines.append(f"deb [{opt}] {uri} {suite} {' '.join(comps)}")
    (a / "sources.list").write_text("\n".join(lines) + "\n")
    print("  arm64 sources:\n" + "\n".join("    " + l for l in lines), flush=True)
    print("  private arm64 apt options: " + " ".join(_apt_opts()), flush=True)
    proc = _run(["apt-get", *_apt_opts(), "update"], env=_apt_env(), capture=True,
                check=False)
    print(proc.stdout, flush=True)
    (a / "update.log").write_text(proc.stdout)
    problems = [l for l in proc.stdout.splitlines() if l.startswith(("E:", "W:", "Err:"))]
    indexes = [p.name for p in (a / "lists").iterdir()
               if "binary-arm64_Packages" in p.name]
    if proc.returncode != 0 or not indexes:
        raise CorpusError(
            "could not fetch an arm64 package index with a private apt state "
            f"(apt-get update exit status {proc.returncode}; arm64 indexes fetched: "
            f"{indexes or 'none'}):\n" + "\n".join(problems or proc.stdout.splitlines()[-20:]))
    return {"indexes": sorted(indexes), "warnings": problems}


def _dpkg_version_cmp(a: str, b: str) -> int:
    if a == b:
        return 0
    lt = subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0
    return -1 if lt else 1


def _pick_image() -> dict:
    env = _apt_env()
    found = _run(["apt-cache", *_apt_opts(), "search", "--names-only", IMAGE_PACKAGE_RE],
                 env=env, capture=True).stdout
    names = sorted({l.split(" - ")[0].strip() for l in found.splitlines() if l.strip()})
    if not names:
        raise CorpusError(f"no package matches {IMAGE_PACKAGE_RE} in the arm64 index")
    versions = {}
    show = _run(["apt-cache", *_apt_opts(), "show", "--no-all-versions", *names],
                env=env, capture=True).stdout
    for para in re.split(r"\n\s*\n", show):
        pm = re.search(r"^Package: (\S+)", para, re.M)
        vm = re.search(r"^Version: (\S+)", para, re.M)
        if pm and vm:
            versions[pm.group(1)] = vm.group(1)
    # Prefer the image built from the same upload as the tiny corpus' source.
    want = None
    dl_stamp = _stamp("source", "download")
    if dl_stamp.is_file():
        want = _deb_field(Path(json.loads(dl_stamp.read_text())["result"]), "Version")
    else:
        pol = _run(["apt-cache", "policy", SOURCE_PACKAGE], capture=True, check=False).stdout
        m = re.search(r"Candidate: (\S+)", pol)
        want = m.group(1) if m and m.group(1) != "(none)" else None
    same = [n for n, v in versions.items() if v == want]
    if same:
        name = same[0]
        why = f"same version as {SOURCE_PACKAGE} ({want})"
    else:
        key = functools.cmp_to_key(_dpkg_version_cmp)
        name = max(versions, key=lambda n: key(versions[n]))
        why = f"newest; no arm64 image has {SOURCE_PACKAGE}'s version {want}"
    print(f"  candidates: {versions}\n  picked {name} {versions[name]}: {why}", flush=True)
    return {"package": name, "version": versions[name], "why": why}


def _download_image(pick: dict) -> str:
    dl = cache_dir() / "downloads" / "arm64"
    dl.mkdir(parents=True, exist_ok=True)
    for stale in dl.glob(f"{pick['package']}_*.deb"):
        stale.unlink()
    _run(["apt-get", *_apt_opts(), "download", f"{pick['package']}={pick['version']}"],
         cwd=dl, env=_apt_env())
    debs = sorted(dl.glob(f"{pick['package']}_*_arm64.deb"))
    if len(debs) != 1:
        raise CorpusError(f"expected one {pick['package']} arm64 .deb in {dl}, found {debs}")
    if _deb_field(debs[0], "Architecture") != "arm64":
        raise CorpusError(f"{debs[0]} is not an arm64 package")
    return str(debs[0])


def _extract_deb(deb: str, name: str) -> Path:
    """A fresh work/<name> holding the unpacked .deb."""
    dest = _work() / name
    _rmtree(dest)
    dest.mkdir(parents=True)
    _run(["dpkg-deb", "-x", deb, dest])
    return dest


def _unpack_image(deb: str) -> str:
    return str(_extract_deb(deb, "linux-image-arm64"))


def _collect_modules(root: str, pick: dict, deb: str) -> dict:
    out = cache_dir() / "modules"
    _rmtree(out)
    out.mkdir(parents=True)
    base = Path(root) / "lib" / "modules"
    if not base.is_dir():
        base = Path(root) / "usr" / "lib" / "modules"
    kvers = sorted(p.name for p in base.iterdir() if p.is_dir())
    rels, compressed = [], 0
    for path in sorted(base.rglob("*.ko*")):
        rel = path.relative_to(base)
        name = rel.name
        if name.endswith(".ko"):
            data = path.read_bytes()
        elif name.endswith(".ko.xz"):
            data = lzma.decompress(path.read_bytes())
        elif name.endswith(".ko.gz"):
            data = gzip.decompress(path.read_bytes())
        elif name.endswith(".ko.zst"):
            data = subprocess.run(["zstd", "-dc", str(path)], stdout=subprocess.PIPE,
                                  check=True).stdout
        else:
            continue
        compressed += not name.endswith(".ko")
        target = out / rel.parent / (name[: name.index(".ko")] + ".ko")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        rels.append(str(target.relative_to(out)))
    if not rels:
        raise CorpusError(f"no .ko files under {base}")
    (out / "modules.txt").write_text("\n".join(rels) + "\n")
    total = sum((out / r).stat().st_size for r in rels)
    info = {"corpus": "modules", "package": pick["package"], "version": pick["version"],
            "deb": deb, "kernel_versions": kvers, "ko_files": len(rels),
            "decompressed": compressed, "bytes": total}
    (out / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    _log("modules", f"{len(rels)} .ko files ({compressed} decompressed), {total} bytes")
    return info


def _fetch_arm64(corpus: str, pick_fn, unpack_fn, collect_fn) -> Path:
    """The steps of a corpus taken from one arm64 .deb: a private apt state, the package
    picked, downloaded, unpacked, and what the corpus needs collected from it."""
    _step(corpus, "packages", lambda: _ensure_packages(corpus, ("apt", "dpkg")),
          stamped=False)
    _step(corpus, "apt-update", _apt_update)
    pick = _step(corpus, "pick", pick_fn)
    deb = _step(corpus, "download", lambda: _download_image(pick))
    root = _step(corpus, "unpack", lambda: unpack_fn(deb))
    _step(corpus, "collect", lambda: collect_fn(root, pick, deb))
    return cache_dir() / corpus


def fetch_modules() -> Path:
    return _fetch_arm64("modules", _pick_image, _unpack_image, _collect_modules)


# --------------------------------------------------------------------------
# openblas, openblas-loose: Debian's arm64 OpenBLAS static archive, fetched as
# modules is (private apt state), and the same archive's members as loose files

OPENBLAS_PACKAGE = "libopenblas-pthread-dev"
OPENBLAS_ARCHIVE_GLOB = "libopenblas*.a"
OPENBLAS_LIBDIR = "usr/lib/aarch64-linux-gnu"


def _pick_candidate(package: str) -> dict:
    """The candidate version of *package* in the private arm64 index."""
    show = _run(["apt-cache", *_apt_opts(), "show", "--no-all-versions", package],
                env=_apt_env(), capture=True).stdout
    pm = re.search(r"^Package: (\S+)", show, re.M)
    vm = re.search(r"^Version: (\S+)", show, re.M)
    am = re.search(r"^Architecture: (\S+)", show, re.M)
    if not (pm and vm) or pm.group(1) != package:
        raise CorpusError(f"no {package} in the arm64 index:\n{show[-2000:]}")
    if am and am.group(1) != "arm64":
        raise CorpusError(f"the candidate {package} {vm.group(1)} is for {am.group(1)}, not arm64")
    print(f"  picked {package} {vm.group(1)} (the candidate)", flush=True)
    return {"package": package, "version": vm.group(1), "why": "candidate (apt-cache show)"}


def ar_members(data: bytes) -> list[tuple[str, bytes]]:
    """The members of a GNU (System V) ar archive, in archive order, as (name, contents).

    The global header is ``!<arch>\\n``; each member has a 60-byte header (name 16,
    mtime 12, uid 6, gid 6, mode 8, size 10, ``\\x60\\n``) and its contents padded to
    an even offset. ``/`` (and ``/SYM64/``) is the symbol table and ``//`` the
    long-name table; a name ``/123`` is the one at offset 123 of that table, ended
    by ``/\\n``; a short name ends with ``/``. Several members may share a name.
    """
    if not data.startswith(b"!<arch>\n"):
        kind = "a thin archive" if data.startswith(b"!<thin>\n") else "not an ar archive"
        raise CorpusError(f"{kind} (magic {data[:8]!r})")
    pos, longnames, out = 8, b"", []
    while pos < len(data):
        if pos + 1 == len(data) and data[pos] == 0x0A:  # a final padding byte
            break
        hdr = data[pos:pos + 60]
        if len(hdr) < 60 or hdr[58:60] != b"`\n":
            raise CorpusError(f"bad ar member header at offset {pos:#x}")
        raw = hdr[:16].decode("latin-1").rstrip(" ")
        size = int(hdr[48:58].decode("ascii").strip())
        body = data[pos + 60:pos + 60 + size]
        if len(body) != size:
            raise CorpusError(f"ar member at offset {pos:#x} runs past the end of the archive")
        pos += 60 + size + (size & 1)
        if raw in ("/", "/SYM64/"):
            continue
        if raw == "//":
            longnames = body
            continue
        if raw.startswith("/") and raw[1:].isdigit():
            off = int(raw[1:])
            end = longnames.find(b"/\n", off)
            if off >= len(longnames) or end < 0:
                raise CorpusError(f"long name {raw!r} is outside the // table")
            name = longnames[off:end].decode("utf-8", "surrogateescape")
        elif raw.endswith("/"):
            name = raw[:-1]
        else:
            raise CorpusError(f"ar member name {raw!r} is not in GNU form")
        out.append((name, body))
    return out


def _find_openblas_archive(root: str) -> Path:
    libdir = Path(root) / OPENBLAS_LIBDIR
    found = sorted(p for p in libdir.rglob(OPENBLAS_ARCHIVE_GLOB)
                   if p.is_file() and not p.is_symlink())
    if len(found) != 1:
        every = sorted(str(p.relative_to(root)) for p in libdir.rglob("*.a"))
        raise CorpusError(f"expected one {OPENBLAS_ARCHIVE_GLOB} (not a symlink) under "
                          f"{libdir}, found {found}; the .a files are {every}")
    return found[0]


def _collect_openblas(root: str, pick: dict, deb: str) -> dict:
    out = cache_dir() / "openblas"
    _rmtree(out)
    out.mkdir(parents=True)
    src = _find_openblas_archive(root)
    dst = out / "libopenblas.a"
    shutil.copyfile(src, dst)
    members = ar_members(dst.read_bytes())
    info = {"corpus": "openblas", "package": pick["package"], "version": pick["version"],
            "deb": deb, "archive": str(src.relative_to(root)), "members": len(members),
            "distinct_member_names": len({n for n, _ in members}),
            "bytes": dst.stat().st_size}
    (out / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    _log("openblas", f"{info['archive']}: {len(members)} members, {info['bytes']} bytes")
    return info


def fetch_openblas() -> Path:
    return _fetch_arm64("openblas", lambda: _pick_candidate(OPENBLAS_PACKAGE),
                        lambda deb: str(_extract_deb(deb, f"{OPENBLAS_PACKAGE}-arm64")), _collect_openblas)


def _split_openblas() -> dict:
    """openblas's archive as loose files members/NNNNN-<name>, numbered from 1 in
    archive order (members share names, so ``ar x`` would overwrite some)."""
    archive = cache_dir() / "openblas" / "libopenblas.a"
    out = cache_dir() / "openblas-loose"
    _rmtree(out)
    (out / "members").mkdir(parents=True)
    members = ar_members(archive.read_bytes())
    rels = []
    for i, (name, body) in enumerate(members, 1):
        rel = f"members/{i:05d}-{name.replace('/', '_')}"
        (out / rel).write_bytes(body)
        rels.append(rel)
    (out / "members.txt").write_text("\n".join(rels) + "\n")
    source = json.loads((cache_dir() / "openblas" / "info.json").read_text())
    names = Counter(n for n, _ in members)
    info = {"corpus": "openblas-loose", "from": str(archive), "package": source["package"],
            "version": source["version"], "members": len(rels),
            "shared_names": sum(1 for n in names.values() if n > 1),
            "bytes": sum(len(b) for _, b in members)}
    (out / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    _log("openblas-loose", f"{len(rels)} member files ({info['shared_names']} names "
                           f"occur more than once), {info['bytes']} bytes")
    return info


def split_openblas() -> Path:
    corpus = "openblas-loose"
    BUILDERS["openblas"]()
    _step(corpus, "collect", _split_openblas)
    return cache_dir() / corpus


# --------------------------------------------------------------------------
# CLI


BUILDERS = {"tiny": build_tiny, "tiny-prefix": lambda: build_prefix("tiny"), "modules": fetch_modules,
            "big": lambda: build_kernel("big"), "big-prefix": lambda: build_prefix("big"),
            "defconfig": lambda: build_kernel("defconfig"),
            "tiny-debug": lambda: build_kernel("tiny-debug"),
            "tiny-debug-prefix": lambda: build_prefix("tiny-debug"),
            "openblas": fetch_openblas, "openblas-loose": split_openblas}


def status() -> None:
    print(f"cache: {cache_dir()}")
    stamps = sorted((cache_dir() / "stamps").glob("*.json")) \
        if (cache_dir() / "stamps").is_dir() else []
    for st in stamps:
        data = json.loads(st.read_text())
        print(f"  {st.stem:28} {_fmt(data['seconds']):>24}  {data['finished']}")
    for name in CORPORA:
        print(f"{name:12} {corpus_path(name) or '(not built)'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m benchmarks.corpus",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="+", metavar="NAME",
                    choices=[*CORPORA, "all", "status"],
                    help=f"{', '.join(CORPORA)}, all, or status")
    args = ap.parse_args(argv)
    names: list[str] = []
    for n in args.names:
        names += list(CORPORA) if n == "all" else [n]
    for name in names:
        if name == "status":
            status()
            continue
        t0 = time.monotonic()
        try:
            path = BUILDERS[name]()
        except CorpusError as exc:
            print(f"[{name}] FAILED after {_fmt(time.monotonic() - t0)}: {exc}",
                  file=sys.stderr, flush=True)
            return 1
        print(f"[{name}] ready in {path} (this run: {_fmt(time.monotonic() - t0)})",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
