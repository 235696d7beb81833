"""Every op of the library's op table, tested through whatever Value method makes it
(tests/op_methods.py finds them): a new op with a method is covered here without an
edit. The named op codes of Python are checked against microcrad.h."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import pytest
import torch

import microcrad
from microcrad import _lib
from microcrad.engine import Value

from op_methods import OP_METHODS, STRUCTURAL_OPS, OpMethod

HEADER = Path(__file__).resolve().parent.parent / "c" / "include" / "microcrad.h"
F64 = torch.float64


def header_ops() -> list[str]:
    """The names of microcrad_op's members, in order (their codes are their indices)."""
    text = re.sub(r"/\*.*?\*/", " ", HEADER.read_text(), flags=re.S)
    enum = re.search(r"typedef enum\s*\w*\s*\{([^}]*)\}\s*microcrad_op\s*;", text)
    assert enum, "the header parser found no microcrad_op"
    names = re.findall(r"MICROCRAD_OP_(\w+)", enum.group(1))
    assert names[-1] == "COUNT_"
    return names[:-1]


@pytest.mark.skipif(not HEADER.exists(), reason="needs the source tree's microcrad.h")
def test_the_op_table_and_the_named_codes_match_the_header() -> None:
    names = header_ops()
    assert len(_lib.OPS) == len(names)
    assert [op.code for op in _lib.OPS] == list(range(len(names)))
    for code, name in enumerate(names):
        if hasattr(_lib, f"OP_{name}"):
            assert getattr(_lib, f"OP_{name}") == code, name
    named = [
        attribute
        for attribute in dir(_lib)
        if re.fullmatch(r"OP_[A-Z_]+", attribute) and isinstance(getattr(_lib, attribute), int)
    ]
    assert len(named) > 10 and all(attribute[3:] in names for attribute in named), named
    assert [op.name for op in _lib.OPS] == [_lib.op_name(op.code) for op in _lib.OPS]


def test_every_op_but_the_structural_ones_has_a_value_method() -> None:
    covered = {method.op.code for method in OP_METHODS}
    missing = [op for op in _lib.OPS if op.code not in covered | STRUCTURAL_OPS]
    assert missing == []
    assert len(OP_METHODS) >= 20


def _inputs(method: OpMethod) -> list[Value]:
    # Points where every op here is smooth and defined (log and pow need a > 0).
    return [Value(0.7), Value(1.3)][: method.operands]


@pytest.mark.parametrize("method", OP_METHODS, ids=str)
def test_forward_and_gradient_match_pytorch(method: OpMethod) -> None:
    values = _inputs(method)
    out = method.apply(values)
    assert out._op == (method.op.name if not method.op.takes_param else "**2")
    out.backward()
    tensors = [torch.tensor(v.data, dtype=F64, requires_grad=True) for v in values]
    number = torch.tensor(2.0, dtype=F64)
    if method.form == "unary":
        expected = getattr(tensors[0], method.method)()
    elif method.form == "values":
        expected = getattr(tensors[0], method.method)(tensors[1])
    else:
        expected = getattr(tensors[0], method.method)(number)
    expected.backward()
    assert math.isclose(out.data, expected.item(), rel_tol=1e-12)
    for value, tensor in zip(values, tensors):
        assert tensor.grad is not None
        assert math.isclose(value.grad, tensor.grad.item(), rel_tol=1e-12, abs_tol=1e-300)


@pytest.mark.parametrize("method", OP_METHODS, ids=str)
def test_deepcopy_rebuilds_the_op(method: OpMethod) -> None:
    values = _inputs(method)
    out = method.apply(values)
    out.grad = 0.25
    twin = copy.deepcopy(out)
    assert twin is not out and twin._ptr != out._ptr
    assert _lib.op_of(twin._ptr) == method.op.code
    assert (twin.data, twin.grad, twin._op) == (out.data, out.grad, out._op)
    assert sorted(v.data for v in twin._prev) == sorted(v.data for v in out._prev)


@pytest.mark.parametrize("method", OP_METHODS, ids=str)
def test_out_of_memory_in_any_op_is_a_memory_error_and_leaks_nothing(method: OpMethod) -> None:
    values = _inputs(method)
    before = microcrad.live_values()
    # The first allocation that fails: the op's node (or the leaf of its number).
    for failing in (1, 2):
        assert _lib.c.microcrad_fail_allocation(failing) == 0
        try:
            with pytest.raises(MemoryError):
                method.apply(values)
        finally:
            _lib.c.microcrad_fail_allocation(0)
        assert microcrad.live_values() == before
        if method.form == "unary" or method.form == "values" or method.op.takes_param:
            break  # one allocation only: nothing else to fail
