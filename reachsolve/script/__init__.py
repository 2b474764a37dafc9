"""Linker scripts: the syntax tree, its lexer and parser, and the layout an object gets from one.

``parse``/``parse_file`` give a :class:`Script` tree (nothing evaluated); the
chain walk in :mod:`reachsolve.script.chain` turns a tree plus an object into
the ordered items and symbol terms the layout models work with.
"""
from .parser import *  # noqa: F401,F403
from .parser import __all__  # noqa: F401
