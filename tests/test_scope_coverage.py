"""Every C function that hands out new references is tested with a scope open.

Scopes (microcrad_scope_begin/end) must collect every new reference a library
function returns. tests/c/test_scope.c checks that for each such function in a table;
this test keeps the table complete: a function added to microcrad.h that returns a
`Value *` (or fills a `Value **out` with new references) and is missing from the
table fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = (ROOT / "c" / "include" / "microcrad.h").read_text(encoding="utf-8")
SCOPE_TEST = (ROOT / "tests" / "c" / "test_scope.c").read_text(encoding="utf-8")

# Borrowed pointers: documented as such in the header, not references.
BORROWED = {"value_prev"}


def functions_handing_out_references() -> set[str]:
    returning = set(re.findall(r"MICROCRAD_API\s+Value\s*\*\s*(\w+)\s*\(", HEADER))
    # int f(..., Value **out): the forward passes. The *_parameters functions, which
    # lend borrowed pointers, return int64_t and are not matched.
    filling = set(re.findall(r"MICROCRAD_API\s+int\s+(\w+)\s*\([^;]*?Value\s*\*\*\s*out\s*\)",
                             HEADER, flags=re.DOTALL))
    return (returning | filling) - BORROWED


def test_the_header_is_parsed() -> None:
    found = functions_handing_out_references()
    # A sample of each kind, so that a regex that stops matching cannot pass quietly.
    assert {"value_add", "value_create_leaf", "value_scalar_pow", "value_neuron_activation",
            "microcrad_neuron_forward", "microcrad_layer_forward",
            "microcrad_mlp_forward"} <= found
    assert not {"value_prev", "microcrad_mlp_parameters", "value_get_data_many"} & found


def op_constructors_of_fixed_arity() -> set[str]:
    """The constructors of the library's ops of one or two operands, which
    test_every_op_constructor_goes_to_the_scope (tests/c/test_scope.c) reaches through
    the op table: an op added to the table is covered there without a CALL line."""
    from microcrad import _lib

    lib = _lib.c
    names = set()
    for op in range(lib.microcrad_op_count()):
        if lib.microcrad_op_arity(op) in (1, 2):
            names.add(lib.microcrad_op_constructor(op).decode("ascii"))
    return names


def test_the_op_table_names_constructors_of_the_header() -> None:
    constructors = op_constructors_of_fixed_arity()
    assert {"value_add", "value_neg", "value_pow_const", "value_sigmoid"} <= constructors
    assert constructors <= functions_handing_out_references()


def test_every_such_function_is_in_the_scope_test_table() -> None:
    assert "test_every_op_constructor_goes_to_the_scope();" in SCOPE_TEST
    tested = set(re.findall(r"CALL\((\w+)\)", SCOPE_TEST)) | op_constructors_of_fixed_arity()
    missing = sorted(functions_handing_out_references() - tested)
    assert not missing, (
        f"add {missing} to the calls table of tests/c/test_scope.c "
        "(test_every_result_goes_to_the_scope)")
