"""The one place where decision records become words, for every renderer and both paths."""
from __future__ import annotations

from ..target.catalogue import BY_NAME
from ..target.policy import PROFILE_LABEL
from ..target.rewrite import FORMS
from .fixes import Fix, FixDecision, FixKind, Remedy
from .proofs import (Failure, FailureKind, FitUndecided, Margin, MayStayUndefined, Problem, Proof, ProofKind, Reason,
                     TypeRejected, Undecided, UndefinedWeak, VeneerNote)

_PAGE_KINDS = (ProofKind.PAGE_SPAN, ProofKind.PAGE_FIXED, ProofKind.PAGE_SOLVER)


def robust(p: Proof) -> str:
    """Why a site is robust; one text per kind of proof, whichever path found it."""
    k, rng, (lo, hi), (vmin, vmax) = p.kind, p.range, p.span, p.value
    if k == ProofKind.AS_LINKED:
        return f"as linked, the value is {vmin:#x}, which fits"
    if k == ProofKind.WRAP_QUERY:
        return (f"the value lies in [{vmin:#x}, {vmax:#x}]; read as 64 bits, as the linkers read it, the solver "
                f"proved it within [{rng[0]:#x}, {rng[1]:#x}] for every layout"
                + (f", always a multiple of {p.granule}" if p.granule > 1 else ""))
    if k == ProofKind.PAGE_QUERY:
        return f"the solver proved Page delta within [{rng[0]:#x}, {rng[1]:#x}] for every layout"
    if k in _PAGE_KINDS:
        if k == ProofKind.PAGE_FIXED:
            head = f"same section: wherever it lies, the page delta is in [{vmin:#x}, {vmax:#x}]"
        elif k == ProofKind.PAGE_SOLVER:
            head = (f"the solver bounds {p.dependent} to [{lo:#x}, {hi:#x}] over "
                    f"every layout, so the page delta lies in [{vmin:#x}, {vmax:#x}]")
        else:
            head = (f"both ends lie inside the {p.image_max:#x}-byte image, so {p.dependent} lies in "
                    f"[{lo:#x}, {hi:#x}] and the page delta in [{vmin:#x}, {vmax:#x}]")
        return f"{head}; within [{rng[0]:#x}, {rng[1]:#x}]"
    if k == ProofKind.FIXED:
        head = f"same section: value fixed at {p.const:+#x}"
    elif k == ProofKind.ABSOLUTE:
        head = f"absolute: value fixed at {p.const:#x}"
    elif k == ProofKind.SOLVER:
        head = (f"the solver bounds {p.dependent} to [{lo:#x}, {hi:#x}] over every layout, "
                f"so the value lies in [{vmin:#x}, {vmax:#x}]")
    elif k == ProofKind.ALIGNED:
        head = (f"no range applies; {p.dependent} is always a multiple of {p.granule}, "
                f"and so is the constant {p.const:#x}")
    else:
        head = (f"both ends lie inside the {p.image_max:#x}-byte image, so {p.dependent} lies in "
                f"[{lo:#x}, {hi:#x}] and the value in [{vmin:#x}, {vmax:#x}]")
    tail = []
    if rng is not None:
        tail.append(f"within [{rng[0]:#x}, {rng[1]:#x}]")
    elif p.veneered:
        tail.append("out-of-range branches are repaired by veneers")
    if p.granule > 1 and k != ProofKind.ALIGNED:
        tail.append(f"always a multiple of {p.granule}")
    return head + ("; " + ", ".join(tail) if tail else "")


def problem(f: Failure) -> str:
    """What is wrong with the value: out of range, or not a multiple of the granule."""
    if f.problem is Problem.RANGE:
        return f"value {f.value:#x} is not in [{f.range[0]:#x}, {f.range[1]:#x}]"
    return f"value {f.value:#x} is not a multiple of {f.granule}"


def margin(m: Margin) -> str:
    if m.between is None:
        return f"breaks once {m.amount:#x} more bytes lie between the site and its target"
    words = f"breaks once {m.amount:#x} more bytes lie between {m.between[0]} and {m.between[1]}"
    if m.descriptions:
        return (words + "; only input matching " + ", ".join(f"`{x}`" for x in m.descriptions)
                + (f" (and {m.more} more descriptions)" if m.more else "") + " can lie there")
    return words + "; the script lets no input lie there"


def failure(f: Failure) -> str:
    what = problem(f)
    if f.kind is FailureKind.AS_LINKED:
        text = f"fails as linked: {what}"
    else:
        who = ", ".join(PROFILE_LABEL[p] for p in f.rejected_by) or "no linker reports it; the code is silently wrong"
        if f.silent:
            who += f"; {', '.join(PROFILE_LABEL[p] for p in f.silent)} silently drops the low bits"
        head = "no layout of the model fits" if f.kind is FailureKind.NO_LAYOUT else "fails in some layouts"
        text = f"{head}: {what} ({who})"
    return text + (f"; {margin(f.margin)}" if f.margin is not None else "")


_WEAK_S = {"next": "to the next instruction (S = P+4)", "place": "to the place (S = P)",
           "page": "to the place's page (S = Page(P))", "zero": "to 0 (S = 0)"}


def _weak_value(r) -> str:
    """A per-linker decision on a resolved weak value, without the words of its proof kind
    (a 'same section' proof of S = P+4 is about the resolution, not the target's section)."""
    if isinstance(r, Proof):
        lo, hi = r.value
        what = "page delta" if r.kind in _PAGE_KINDS or r.kind == ProofKind.PAGE_QUERY else "value"
        head = (f"the {what} is {lo:#x}" if lo == hi else f"the {what} lies in [{lo:#x}, {hi:#x}]"
                ) if r.kind != ProofKind.PAGE_QUERY else "the solver proved the page delta in range for every layout"
        if r.range is not None:
            head += f", within [{r.range[0]:#x}, {r.range[1]:#x}]"
        if r.granule > 1:
            head += f", a multiple of {r.granule}"
        return head
    if isinstance(r, Failure):
        return failure(r)
    return reason(r)


def weak(w: UndefinedWeak) -> str:
    """Why an undefined weak reference is decided as the linkers resolve it, per linker."""
    parts = []
    for p in w.per:
        who = PROFILE_LABEL[p.profile]
        if p.rule == "nop":
            parts.append(f"{who} rewrites the branch to a NOP")
        else:
            parts.append(f"{who} resolves it {_WEAK_S[p.rule]}: {_weak_value(p.record)}")
    return (f"undefined weak {w.symbol} in a {w.final_link} link (not preemptible): " + "; ".join(parts))


def reason(r: Reason) -> str:
    """The reason line of a site, from its decision record."""
    if isinstance(r, UndefinedWeak):
        return weak(r)
    if isinstance(r, Proof):
        return robust(r)
    if isinstance(r, Failure):
        return failure(r)
    if isinstance(r, Undecided):
        return r.why
    if isinstance(r, TypeRejected):
        who = ", ".join(PROFILE_LABEL[p] for p in r.rejected_by)
        return f"{who} rejects {r.reloc} outright, whatever its value: the object does not load"
    raise TypeError(r)


def note(n) -> str:
    if isinstance(n, VeneerNote):
        how = "is bounded only by" if n.bounded_only else "reaches"
        return (f"may need a veneer: the value {how} [{n.value[0]:#x}, {n.value[1]:#x}], "
                f"beyond the direct range [{n.direct[0]:#x}, {n.direct[1]:#x}]")
    if isinstance(n, FitUndecided):
        return f"whether any layout fits is undecided: {n.why}"
    if isinstance(n, MayStayUndefined):
        return (f"{n.symbol} is weak: no definition of it fits, but it may stay undefined, and a final link "
                f"then resolves it (--final-link decides that case), so the site is not broken")
    raise TypeError(n)


def reach(rng: tuple[int, int] | None) -> str:
    """A signed range as people say it: [-2^27, 2^27-4] is "±128 MiB"."""
    if rng is None:
        return ""
    n = -rng[0]
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"±{n >> shift} {unit}"
    return f"[{rng[0]:#x}, {rng[1]:#x}]"


def _changed(d: FixDecision) -> str:
    parts = [f"{c.section}+{c.offset:#x} {c.reloc} out of reach (the assembler would reject it)" if c.assembler
             else f"{c.section}+{c.offset:#x} {c.reloc} {c.before} -> {c.after}" for c in d.changed]
    more = f" and {d.more_changed} more" if d.more_changed else ""
    n = len(d.changed) + d.more_changed
    return f"the growth changes the verdict of {n} other site{'s' if n > 1 else ''}: " + "; ".join(parts) + more


def _advice(d: FixDecision) -> str:
    r = d.remedy
    if r is Remedy.ALIGN:
        return (f"no rewrite reaches a misaligned target: align {d.target} to {d.granule} bytes "
                f"(.balign {d.granule} before it in assembly, __aligned({d.granule}) in C)")
    if r is Remedy.WIDEN:
        return f"no instruction to rewrite: widen the word to {d.wider}"
    if r is Remedy.MOVW:
        return f"the value needs more than this move-wide group: add a movk with {d.wider} for the next 16 bits"
    if r is Remedy.LITERAL:
        return (f"adrp reaches ±4 GiB and no shorter form reaches further: load the address of {d.target} from a "
                f"literal pool (ldr Xd, ={d.target}, an R_AARCH64_ABS64 word)")
    if r is Remedy.GOT:
        return (f"no plain rewrite of a GOT literal load: use adrp Xt, :got:{d.target} and "
                f"ldr Xt, [Xt, :got_lo12:{d.target}] (±4 GiB)")
    return "adr into the zero register writes nothing: delete it"


def fix(d: FixDecision) -> Fix:
    """The words of a fix decision (report/fixes.py), as reports show them."""
    if d.kind is FixKind.ADVICE:
        return Fix(d.asm, "", "none", _advice(d), d)
    parts = []
    if d.verdict is None:
        parts.append(f"the rewrite could not be decided: {d.why}")
    else:
        ok = [f"{s.reloc} ({s.section}+{s.offset:#x})" for s in d.sites if s.verdict == "robust"]
        head = f"{d.verdict} under model {d.model}"
        if ok:
            head += f": the new {' and '.join(ok)} {'fits' if len(ok) == 1 else 'fit'} in every layout"
        parts.append(head)
        for s in d.sites:
            if s.verdict != "robust":
                parts.append(f"the new {s.reloc} ({s.section}+{s.offset:#x}) is {s.verdict}: {s.reason}")
        grown = ", ".join(f"{s} grown by {n:#x} bytes" for s, n in d.grown if n)
        together = f", this object's {d.others + 1} fixes applied together" if d.others else ""
        if grown or together:
            parts.append(f"decided with {grown or 'no section grown'}{together}")
    if d.form == "b.always":
        parts.append("a branch that is always taken is a plain b")
    if d.scratch and d.form in ("b", "bl"):
        parts.append(f"{d.scratch} is clobbered (IP0, as a linker's veneer would clobber it)")
    elif d.scratch:
        parts.append(f"{d.scratch} stands for a free general register of your choice, which the sequence "
                     f"clobbers (the verdict does not depend on which)")
    if d.align is not None and d.align[0] > d.align[1]:
        parts.append(f"the :lo12: load needs {d.target} aligned to {d.align[0]} bytes; the literal needed "
                     f"{d.align[1]}")
    if d.assumptions:
        parts.append("it rests on: " + "; ".join(d.assumptions))
    if d.changed or d.more_changed:
        parts.append(_changed(d))
    return Fix(d.asm, reach(d.reach), str(d.verdict) if d.verdict is not None else "unknown", "; ".join(parts), d)


# Words of the SARIF rules: one rule per relocation family and problem (report.sarif).
_RULE_HEADS = {
    "reach": ("{reloc} may not reach its target",
              "In some layouts of the model, or in every one, the value of this {reloc} site lies outside the "
              "range its instruction field encodes, and the link fails or the code is wrong."),
    "align": ("{reloc} target may be misaligned",
              "In some layouts of the model the value of this {reloc} site is not a multiple of what the "
              "instruction scales by; the low bits are lost, or the linker rejects it."),
    "undecided": ("{reloc} site undecided",
                  "reachsolve could not decide whether this {reloc} site fits every layout of the model; it "
                  "is not counted as robust."),
    "rejected": ("{reloc} is rejected by the linker",
                 "A selected linker rejects this relocation type outright, whatever the layout."),
}
_RULE_HELP = {
    "reach": ("Each finding gives the rewrite reachsolve proved for that site under the model, or an advice "
              "where no rewrite applies (a data word is widened to PREL64/ABS64). The finding's layout shows "
              "where it breaks; --emit-linker-script reproduces it with the linkers."),
    "align": "Align the target to the access size (`.balign 8`, `__aligned(8)`), or use an access it satisfies.",
    "undecided": ("Give the solver more time (--timeout, --rlimit), narrow the model (a linker script), or treat "
                  "the site as vulnerable."),
    "rejected": "Use a relocation the linker supports, or link the code into the image instead of a module.",
}


def rule(kind: str, reloc: str) -> tuple[str, str, str]:
    """A SARIF rule's short description, full description and help, for one rule kind
    ("reach", "align", "undecided", "rejected") and relocation type. A reach rule's help
    lists the standard rewrites of the type's instructions (target.rewrite.FORMS)."""
    short, full = _RULE_HEADS[kind]
    help_text = _RULE_HELP[kind]
    if kind == "reach":
        spec = BY_NAME.get(reloc)
        forms = [f for f in FORMS.values() if spec is not None and set(f.classes) & set(spec.insns)]
        if forms:
            help_text = ("Rewrites: " + "; ".join(f"{f.name}: `{'; '.join(f.asm)}`" for f in forms)
                         + " ({sym}, {reg}, {inv}: the site's symbol, register, inverted condition). " + help_text)
    return short.format(reloc=reloc), full.format(reloc=reloc), help_text
