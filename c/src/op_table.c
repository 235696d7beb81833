/*
 * op_table.c - maps each microcrad_op to its rule. Adding an op: a rule and a
 * constructor in an ops_*.c file, an enum entry in microcrad.h, and a line here.
 */
#include "internal.h"

const OpRule mc_rule_leaf = {"", NULL, NULL};
const OpRule mc_rule_custom = {"custom", NULL, NULL};

const OpRule *const mc_rules[MICROCRAD_OP_COUNT_] = {
    [MICROCRAD_OP_LEAF] = &mc_rule_leaf,
    [MICROCRAD_OP_CUSTOM] = &mc_rule_custom,
    [MICROCRAD_OP_ADD] = &mc_rule_add,
    [MICROCRAD_OP_SUB] = &mc_rule_sub,
    [MICROCRAD_OP_MUL] = &mc_rule_mul,
    [MICROCRAD_OP_DIV] = &mc_rule_div,
    [MICROCRAD_OP_NEG] = &mc_rule_neg,
    [MICROCRAD_OP_POW] = &mc_rule_pow,
    [MICROCRAD_OP_POW_CONST] = &mc_rule_pow_const,
    [MICROCRAD_OP_EXP] = &mc_rule_exp,
    [MICROCRAD_OP_LOG] = &mc_rule_log,
    [MICROCRAD_OP_RELU] = &mc_rule_relu,
    [MICROCRAD_OP_TANH] = &mc_rule_tanh,
    [MICROCRAD_OP_SIGMOID] = &mc_rule_sigmoid,
    [MICROCRAD_OP_SUM] = &mc_rule_sum,
    [MICROCRAD_OP_NEURON] = &mc_rule_neuron,
};

const OpRule *mc_op_rule(int op)
{
    return op >= 0 && op < MICROCRAD_OP_COUNT_ ? mc_rules[op] : NULL;
}
