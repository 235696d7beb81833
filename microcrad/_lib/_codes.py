"""The numbers microcrad.h defines, with the header's values: status codes, op codes,
activations, build-feature bits and the canary of a live node."""

from __future__ import annotations

# microcrad_status codes.
OK = 0
ERR_NULL = -1
ERR_RELEASED = -2
ERR_FOREIGN = -3
ERR_NOMEM = -4
ERR_ARGUMENT = -5
ERR_OVERFLOW = -6
ERR_IO = -7
ERR_CALLBACK = -8  # MICROCRAD_ERR_CALLBACK: a backward callback failed

# The largest reference count a node can hold (the C field is a uint32_t).
MAX_REF_COUNT = 2**32 - 1

# microcrad_op codes.
OP_LEAF = 0
OP_CUSTOM = 1
OP_ADD = 2
OP_SUB = 3
OP_MUL = 4
OP_DIV = 5
OP_NEG = 6
OP_POW = 7
OP_POW_CONST = 8
OP_EXP = 9
OP_LOG = 10
OP_RELU = 11
OP_TANH = 12
OP_SIGMOID = 13
OP_SUM = 14
OP_NEURON = 15

# microcrad_activation codes.
ACT_LINEAR = 0
ACT_RELU = 1
ACT_TANH = 2
ACT_SIGMOID = 3

# microcrad_build_features() bits.
BUILD_ASAN = 1
BUILD_TSAN = 2
BUILD_UBSAN = 4
BUILD_VALGRIND = 8

# MICROCRAD_MAGIC_LIVE: the canary of a node that is alive.
MAGIC_LIVE = 0x6D637276
