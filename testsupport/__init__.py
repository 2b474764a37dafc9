"""Test support shared by tests/ and benchmarks/ (not shipped: packaging includes reachsolve* only).

- :mod:`.toolchain`: the real clang, ld.lld, GNU ld and llvm-ar; assembling fixtures, linking;
- :mod:`.randobj`: random relocatable objects and random layouts of the free model;
- :mod:`.oracle`: an ELF reader, relocation values and linker checks written independently of
  reachsolve, and the parsing of what ld.lld and GNU ld report;
- :mod:`.campaign`: the soundness campaign that compares reachsolve with that oracle;
- :mod:`.corpora`: where the large external corpora live once built.

Nothing here imports reachsolve at module level; only :mod:`.campaign` uses it at all.
"""
