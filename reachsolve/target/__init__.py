"""Everything reachsolve knows about AArch64, and nothing else does.

- :mod:`.catalogue`: one row per range-checked relocation type (AAELF64 5.7):
  value formula, instruction field, granule and each linker's check;
- :mod:`.encoding`: writing a value into its field, reading an addend back;
- :mod:`.decode`: instruction classes and targets (the only capstone user);
- :mod:`.policy`: which linkers' limits apply and the veneer rule.

Code above this package reaches AArch64 only through these modules, so a
second instruction set is a second package of the same shape.
"""
