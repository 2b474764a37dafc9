"""The one place where decision records become words, for every renderer and both paths."""
from __future__ import annotations

from ..target.policy import PROFILE_LABEL
from .proofs import (Failure, FailureKind, FitUndecided, Margin, Problem, Proof, ProofKind, Reason, Undecided,
                     VeneerNote)

_PAGE_KINDS = (ProofKind.PAGE_SPAN, ProofKind.PAGE_FIXED, ProofKind.PAGE_SOLVER)


def robust(p: Proof) -> str:
    """Why a site is robust; one text per kind of proof, whichever path found it."""
    k, rng, (lo, hi), (vmin, vmax) = p.kind, p.range, p.span, p.value
    if k == ProofKind.AS_LINKED:
        return f"as linked, the value is {vmin:#x}, which fits"
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


def reason(r: Reason) -> str:
    """The reason line of a site, from its decision record."""
    if isinstance(r, Proof):
        return robust(r)
    if isinstance(r, Failure):
        return failure(r)
    if isinstance(r, Undecided):
        return r.why
    raise TypeError(r)


def note(n) -> str:
    if isinstance(n, VeneerNote):
        how = "is bounded only by" if n.bounded_only else "reaches"
        return (f"may need a veneer: the value {how} [{n.value[0]:#x}, {n.value[1]:#x}], "
                f"beyond the direct range [{n.direct[0]:#x}, {n.direct[1]:#x}]")
    if isinstance(n, FitUndecided):
        return f"whether any layout fits is undecided: {n.why}"
    raise TypeError(n)
