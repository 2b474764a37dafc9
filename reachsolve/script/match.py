"""Which input description takes which input section: the linkers' first-match rule.

Every allocated section of the object goes to the first input description in
script order whose file and section patterns match it (GNU ld and lld both
take the first match, and within a description the first pattern), or to
/DISCARD/, or is an orphan. Sorting keywords then order the sections one
description took.

Where ld.lld 14 and GNU ld 2.40 differ (file patterns against archive members,
the order of SORT* blocks among unsorted patterns, sort keys), each selected
linker's rule is applied; if they place or order this object's sections
differently, the script means two layouts and that is an error naming the
description, unless the model selects one linker (--linker lld|bfd).
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field

from ..errors import ModelError
from ..objfile.elf import ObjectFile
from . import ast as L


class ScriptModelError(ModelError):
    """A script the layout model cannot follow; names the file, line and column."""

    def __init__(self, path: str, line: int, col: int, message: str):
        super().__init__(f"{path}:{line}:{col}: {message}")


def glob(pattern: str) -> re.Pattern:
    return re.compile(fnmatch.translate(pattern), re.DOTALL)


@dataclass
class Assignment:
    """The outcome of matching: per description (in script order) the sections it takes."""

    specs: list[tuple[str, L.InputSpec]]          # (output section, description)
    members: dict[int, list[tuple[int, object]]]  # description -> [(section index, pattern hit)]
    spec_of: dict[int, int] = field(default_factory=dict)
    discarded: set[int] = field(default_factory=set)
    orphans: list[int] = field(default_factory=list)


def input_specs(script: L.Script, path: str) -> list[tuple[str, L.InputSpec]]:
    """Every input description of the script, in order, with its output section."""
    specs: list[tuple[str, L.InputSpec]] = []
    for cmd in script.commands:
        if isinstance(cmd, L.Sections):
            for st in cmd.body:
                if isinstance(st, L.OutputSection):
                    specs += [(st.name, x) for x in st.body if isinstance(x, L.InputSpec)]
                elif isinstance(st, L.Overlay):
                    raise ScriptModelError(path, st.line, st.col, "OVERLAY is not supported by the layout model")
    return specs


# -- file patterns ---------------------------------------------------------------------

_MEMBER = re.compile(r"(?P<archive>.*?)\((?P<member>.*)\)(?:#\d+)?", re.DOTALL)


def file_names(name: str) -> tuple[str, str | None]:
    """(file, member) of an input as reports name it: ``lib.a(foo.o)`` (also ``#2``, a second
    member of that name, which no pattern can tell apart) is ("lib.a", "foo.o"), a plain
    object ("foo.o", None). The file is its base name: the object is taken to be named as
    in the directory the link runs in."""
    m = _MEMBER.fullmatch(name)
    if m is None:
        return os.path.basename(name), None
    return os.path.basename(m["archive"]), m["member"]


def file_matches(pattern: str, names: tuple[str, str | None], linker: str) -> bool:
    """Does a file pattern of a script match this input, as ``linker`` matches it?

    ld.lld matches the pattern against ``archive:member`` for a member (the whole
    string, ':' is an ordinary character) and against the path for a file. GNU ld
    matches a pattern without ':' against the member's own name; ``archive:member``
    splits at the first ':', an empty archive part meaning "not in an archive" and an
    empty member part "any member" (ld's manual, Input Section Basics)."""
    file, member = names
    if linker == "lld":
        return bool(glob(pattern).match(file if member is None else f"{file}:{member}"))
    if ":" not in pattern:
        return bool(glob(pattern).match(file if member is None else member))
    arch, mem = pattern.split(":", 1)
    if member is None:
        return not arch and (not mem or bool(glob(mem).match(file)))
    return bool(arch) and bool(glob(arch).match(file)) and (not mem or bool(glob(mem).match(member)))


# -- sort keys ---------------------------------------------------------------------------

_INT32 = 1 << 31


def lld_priority(name: str) -> int:
    """ld.lld's getPriority: N of ``foo.N`` (a decimal int, sign allowed), 65535 - N for
    ``.ctors.N``/``.dtors.N``; 65536 (after every priority) for any other name."""
    pos = name.rfind(".")
    if pos < 0:
        return 65536
    s = name[pos + 1:]
    if not re.fullmatch(r"-?[0-9]+", s) or not -_INT32 <= int(s) < _INT32:
        return 65536
    v = int(s)
    if pos == 6 and name.startswith((".ctors", ".dtors")):
        v = 65535 - v
    return v


def bfd_priority(name: str) -> int:
    """GNU ld's get_init_priority: N of ``foo.N`` (digits only), 65535 - N (unsigned) for
    ``.ctors.N``/``.dtors.N``; -1 for other names or a value beyond INT_MAX."""
    pos = name.rfind(".")
    s = name[pos + 1:] if pos >= 0 else ""
    if not re.fullmatch(r"[0-9]+", s):
        return -1
    v = min(int(s), (1 << 64) - 1)
    if pos == 6 and name.startswith((".ctors", ".dtors")):
        v = (65535 - v) % (1 << 64)
    return v if v < _INT32 else -1


def _sort_keys(sort: str) -> tuple[str, str | None]:
    """(outer, inner) of a sort keyword as the parser writes it: SORT is SORT_BY_NAME."""
    outer, _, inner = sort.partition("(")
    inner = inner.rstrip(")") or None
    norm = {"SORT": "SORT_BY_NAME"}
    return norm.get(outer, outer), norm.get(inner, inner) if inner else None


def _lld_order(sections, mem: list, patterns) -> list:
    """ld.lld's order within one description (computeInputSections): sections of unsorted
    patterns in input order, each SORT* pattern's sections a block at its place, stable-
    sorted by (outer key, inner key); SORT_NONE a block in input order."""
    by_pat: dict[int, list] = {}
    for m in mem:
        by_pat.setdefault(_pattern_index(m, patterns), []).append(m)
    key = {"SORT_BY_NAME": lambda m: sections[m[0]].name,
           "SORT_BY_ALIGNMENT": lambda m: -sections[m[0]].align,
           "SORT_BY_INIT_PRIORITY": lambda m: lld_priority(sections[m[0]].name)}
    out, pending = [], []
    for i, p in enumerate(patterns):
        ms = by_pat.get(i, [])
        if p is None or p.sort is None:
            pending += ms
            continue
        out += sorted(pending, key=lambda m: m[0])
        pending = []
        outer, inner = _sort_keys(p.sort)
        if outer == "SORT_NONE":
            out += ms
        else:
            ko, ki = key[outer], key[inner] if inner else (lambda m: 0)
            out += sorted(ms, key=lambda m: (ko(m), ki(m)))
    return out + sorted(pending, key=lambda m: m[0])


_BFD_BUDGET = 4_000_000  # comparisons of GNU ld's tree insertion emulated for one description


def _bfd_compare(sort: tuple[str, str | None], a, b) -> int:
    """GNU ld's compare_section: alignment ties fall back to names, as do init priorities
    when either name carries none."""
    outer, inner = sort

    def name():
        return (a.name > b.name) - (a.name < b.name)

    def align():
        return (a.align < b.align) - (a.align > b.align)
    if outer == "SORT_BY_INIT_PRIORITY":
        pa, pb = bfd_priority(a.name), bfd_priority(b.name)
        if pa < 0 or pb < 0 or pa == pb:
            return name()
        return -1 if pa < pb else 1
    if outer == "SORT_BY_ALIGNMENT":
        return align() or name() if inner in (None, "SORT_BY_NAME") else align()
    # SORT_BY_NAME, alone or with an inner key
    return name() or (align() if inner == "SORT_BY_ALIGNMENT" else 0)


def _bfd_key(sort, sec):
    outer, inner = sort
    if outer == "SORT_BY_ALIGNMENT":
        return (-sec.align, sec.name) if inner in (None, "SORT_BY_NAME") else (-sec.align,)
    return (sec.name, -sec.align) if inner == "SORT_BY_ALIGNMENT" else (sec.name,)


def _bfd_order(sections, mem: list, patterns, spec: L.InputSpec, path: str) -> list:
    """GNU ld's order within one description (wild_sort): with any sorted pattern, each
    section in input order is put into one binary tree: a section of an unsorted (or
    SORT_NONE) pattern at the rightmost place, a sorted one by descending from the root
    with its pattern's comparison; the tree is read in order."""
    sorts = {}
    for i, p in enumerate(patterns):
        if p is not None and p.sort is not None and not p.sort.startswith("SORT_NONE"):
            sorts[i] = _sort_keys(p.sort)
    if not sorts:
        return list(mem)
    idx = [_pattern_index(m, patterns) for m in mem]
    kinds = {sorts.get(i) for i in idx}
    if len(kinds) == 1 and None not in kinds:
        # One comparison for every section: when it is a total preorder the tree is a
        # stable sort by it (ties go right).
        (sort,) = kinds
        if sort[0] != "SORT_BY_INIT_PRIORITY":
            return sorted(mem, key=lambda m: _bfd_key(sort, sections[m[0]]))
        pr = [bfd_priority(sections[m[0]].name) for m in mem]
        if all(p < 0 for p in pr):
            return sorted(mem, key=lambda m: sections[m[0]].name)
        if all(p >= 0 for p in pr):
            return [m for _, m in sorted(zip(pr, mem), key=lambda t: (t[0], sections[t[1][0]].name))]
    # The tree itself, as GNU ld builds it (left, right, item per node).
    left, right, budget = [-1] * len(mem), [-1] * len(mem), _BFD_BUDGET
    root, rightmost = -1, None   # rightmost: (node, side) where an unsorted section goes
    for n, (m, i) in enumerate(zip(mem, idx)):
        sort = sorts.get(i)
        if sort is None:
            parent = rightmost
        else:
            parent, node = None, root
            sec = sections[m[0]]
            while node >= 0:
                budget -= 1
                if budget < 0:
                    raise ScriptModelError(path, spec.line, spec.col, "GNU ld's order of this input description "
                                           "is too costly to follow; choose --linker lld")
                go = _bfd_compare(sort, sec, sections[mem[node][0]]) < 0
                parent, node = (node, go), (left[node] if go else right[node])
        if parent is None:
            root = n
        elif parent[1] is True:
            left[parent[0]] = n
        else:
            right[parent[0]] = n
        if parent == rightmost:
            rightmost = (n, False)
    out, stack, node = [], [], root
    while stack or node >= 0:
        while node >= 0:
            stack.append(node)
            node = left[node]
        node = stack.pop()
        out.append(mem[node])
        node = right[node]
    return out


def _pattern_index(m, patterns) -> int:
    hit = m[1]
    for i, p in enumerate(patterns):
        if p is hit:
            return i
    return 0


# -- matching ----------------------------------------------------------------------------

_RULES = {"lld": ("lld",), "bfd": ("bfd",)}


def assign(script: L.Script, obj: ObjectFile, path: str, linker: str = "both") -> Assignment:
    """The assignment of ``obj``'s sections under the rules of the model's linkers
    (``linker`` as in LayoutModel; "both" and "module" follow ld.lld and GNU ld both)."""
    rules = _RULES.get(linker, ("lld", "bfd"))
    specs = input_specs(script, path)
    names = file_names(obj.name)
    results = []
    for rule in rules:
        compiled = _compile(specs, names, rule)
        if results and compiled == results[0][0]:
            out = results[0][1]
        else:
            out = _match(specs, compiled, obj)
        results.append((compiled, out, rule))
    orders = []
    for compiled, out, rule in results:
        order = {}
        for k, mem in out.members.items():
            if len(mem) < 2:
                order[k] = list(mem)
                continue
            sp = specs[k][1]
            patterns = list(sp.patterns) if sp.patterns else [None]
            if not any(p is not None and p.sort for p in patterns):
                order[k] = list(mem)   # input order, for both linkers
                continue
            order[k] = (_lld_order(obj.sections, mem, patterns) if rule == "lld"
                        else _bfd_order(obj.sections, mem, patterns, sp, path))
        orders.append(order)
    if len(results) == 2:
        a, b = results[0][1], results[1][1]
        for k in range(len(specs)):
            x = [i for i, _ in orders[0].get(k, ())]
            y = [i for i, _ in orders[1].get(k, ())]
            if x != y:
                sp = specs[k][1]
                what = ("take different sections of" if sorted(x) != sorted(y) else "order the sections of")
                raise ScriptModelError(path, sp.line, sp.col,
                                       f"ld.lld and GNU ld {what} {obj.name} by this input description "
                                       f"(ld.lld: {_names(obj, x)}; GNU ld: {_names(obj, y)}); choose --linker "
                                       f"lld or bfd")
        if a.discarded != b.discarded or a.orphans != b.orphans:
            raise ModelError(f"{path}: ld.lld and GNU ld discard or leave unplaced different sections of "
                             f"{obj.name}; choose --linker lld or bfd")
    out = results[0][1]
    out.members = {k: v for k, v in orders[0].items()}
    return out


def synthetic_spec(script: L.Script, path: str, name: str, linker: str = "both") -> int | None:
    """The input description that takes a linker-made input section (``.got``, ``.got.plt``):
    the first whose file pattern matches an input with no file name (ld.lld's synthetic
    sections have none; ``*`` is what scripts write) and whose section patterns match
    ``name``. None: the section is an orphan or discarded."""
    specs = input_specs(script, path)
    found = []
    for rule in _RULES.get(linker, ("lld", "bfd")):
        compiled = _compile(specs, ("", None), rule)
        hit = next((k for k, pats in enumerate(compiled)
                    if pats and any(re.fullmatch(rx, name, re.DOTALL) for rx, _ in pats)), None)
        found.append(None if hit is None or specs[hit][0] == "/DISCARD/" else hit)
    if len(set(found)) > 1:
        raise ModelError(f"{path}: ld.lld and GNU ld place the linker's {name} by different input "
                         f"descriptions; choose --linker lld or bfd")
    return found[0]


def _names(obj: ObjectFile, idx: list[int], limit: int = 4) -> str:
    shown = ", ".join(obj.sections[i].name for i in idx[:limit])
    return (shown + (", ..." if len(idx) > limit else "")) or "none"


def _compile(specs, names, rule: str) -> list:
    """Per description: None when its file pattern does not take this input, else its
    section patterns whose file exclusions leave the input in, as (regex text, pattern)."""
    compiled = []
    for _, sp in specs:
        if not file_matches(sp.file, names, rule) or any(file_matches(x, names, rule) for x in sp.exclude_files):
            compiled.append(None)
            continue
        pats = [(glob(p.glob).pattern, p) for p in sp.patterns
                if not any(file_matches(x, names, rule) for x in p.exclude_files)]
        compiled.append(pats if sp.patterns else [(".*", None)])
    return compiled


def _literal_prefix(pattern) -> str:
    """What every name a section pattern matches starts with: the glob up to its first
    wildcard (fnmatch has no escapes); "" for a description with no patterns."""
    if pattern is None:
        return ""
    text = pattern.glob
    cut = min([k for k in (text.find("*"), text.find("?"), text.find("[")) if k >= 0], default=len(text))
    return text[:cut]


def first_match(compiled):
    """name -> (description index, pattern) of the first description in ``compiled`` (as
    _compile gives) that takes a section of that name, or None.

    One alternation of every pattern, in script order: the regex engine tries the
    alternatives left to right, so the first match is the first description that takes
    the section (the linkers' rule). A name is tried only against the alternatives whose
    literal prefix agrees with its stem (one is a prefix of the other): the others cannot
    match it, and the rest keep the script's order, so the first match is the same."""
    alts, which = [], {}
    for k, pats in enumerate(compiled):
        for rx, p in pats or ():
            which[f"g{len(alts)}"] = (k, p)
            alts.append((f"(?P<g{len(alts)}>{rx})", _literal_prefix(p)))
    by_stem: dict[str, re.Pattern | None] = {}

    def find(name: str):
        cut = name.find(".", 1)
        stem = name if cut < 0 else name[:cut + 1]   # up to the second dot: ".text." of ".text.foo"
        rx = by_stem.get(stem, False)
        if rx is False:
            keep = [a for a, lp in alts if stem.startswith(lp) or lp.startswith(stem)]
            rx = by_stem[stem] = re.compile("|".join(keep), re.DOTALL) if keep else None
        m = rx.match(name) if rx is not None else None
        return which[m.lastgroup] if m is not None else None
    return find


def _match(specs, compiled, obj: ObjectFile) -> Assignment:
    out = Assignment(specs, {k: [] for k in range(len(specs))})
    find = first_match(compiled)
    for sec, alloc in zip(obj.sections, obj.alloc_mask.tolist()):
        if not alloc:
            continue
        hit = find(sec.name)
        if hit is None:
            out.orphans.append(sec.index)
            continue
        k, p = hit
        if specs[k][0] == "/DISCARD/":
            out.discarded.add(sec.index)
        else:
            out.spec_of[sec.index] = k
            out.members[k].append((sec.index, p))
    return out
