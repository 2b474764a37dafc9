"""reachsolve: prove that range-limited AArch64 relocations reach, for every layout.

Importing the package is light: the public names below are loaded on first
use, so a caller that only parses a linker script or reads a report never
loads z3 or capstone.
"""
__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "analyze": "reachsolve.api",
    "load_model": "reachsolve.api",
    "query": "reachsolve.api",
    "SiteQuery": "reachsolve.api",
    "LayoutModel": "reachsolve.model.options",
    "Report": "reachsolve.report.document",
    "SiteResult": "reachsolve.report.document",
    "Counterexample": "reachsolve.report.document",
    "Verdict": "reachsolve.report.proofs",
    "Proved": "reachsolve.ir",
    "Witness": "reachsolve.ir",
    "Unknown": "reachsolve.ir",
    "InputError": "reachsolve.errors",
    "ModelError": "reachsolve.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'reachsolve' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
