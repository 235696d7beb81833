/*
 * op_table.c - maps each microcrad_op to its rule, and the generic constructor
 * value_create_op and the op introspection functions built on the table.
 *
 * Adding an op touches three files: its enum entry and public constructor's prototype
 * in microcrad.h, its rule and constructor in an ops_*.c file, and its two lines here
 * (the rule's declaration and its table entry). The tests that enumerate ops walk
 * this table through microcrad_op_count, microcrad_op_arity and value_create_op.
 */
#include "internal.h"

const OpRule mc_rule_leaf = {.name = "", .constructor = "value_create_leaf", .arity = 0};

/* value_create with operands: at least one. */
static int custom_count_ok(int32_t n) { return n >= 1; }
const OpRule mc_rule_custom = {.name = "custom", .constructor = "value_create", .arity = -1,
                               .count_ok = custom_count_ok};

/* The rules defined in the ops_*.c files, each declared next to its table entry. */
extern const OpRule mc_rule_add, mc_rule_sub, mc_rule_mul, mc_rule_div, mc_rule_neg,
    mc_rule_abs, mc_rule_sum;                                           /* ops_arith.c */
extern const OpRule mc_rule_pow, mc_rule_pow_const, mc_rule_exp, mc_rule_log; /* ops_pow.c */
extern const OpRule mc_rule_relu, mc_rule_tanh, mc_rule_sigmoid;    /* ops_activation.c */
extern const OpRule mc_rule_neuron;                                     /* ops_nn.c */

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
    [MICROCRAD_OP_ABS] = &mc_rule_abs,
};

const OpRule *mc_op_rule(int op)
{
    return op >= 0 && op < MICROCRAD_OP_COUNT_ ? mc_rules[op] : NULL;
}

int microcrad_op_count(void) { return MICROCRAD_OP_COUNT_; }

const char *microcrad_op_name(int op)
{
    const OpRule *rule = mc_op_rule(op);
    return rule ? rule->name : "?";
}

const char *microcrad_op_constructor(int op)
{
    const OpRule *rule = mc_op_rule(op);
    return rule ? rule->constructor : NULL;
}

int microcrad_op_arity(int op)
{
    const OpRule *rule = mc_op_rule(op);
    return rule ? rule->arity : MICROCRAD_ERR_ARGUMENT;
}

int microcrad_op_takes_param(int op)
{
    const OpRule *rule = mc_op_rule(op);
    return rule ? rule->takes_param : MICROCRAD_ERR_ARGUMENT;
}

Value *value_create_op(int op, double param, int32_t n, Value *const *operands)
{
    static const char fn[] = "value_create_op";
    const OpRule *rule = mc_op_rule(op);
    if (!rule) {
        mc_error(MICROCRAD_ERR_ARGUMENT, "%s: %d is not a microcrad_op", fn, op);
        return NULL;
    }
    int count_ok = rule->arity >= 0 ? n == rule->arity
                                    : n >= 0 && (!rule->count_ok || rule->count_ok(n));
    if (!count_ok) {
        if (rule->arity >= 0)
            mc_error(MICROCRAD_ERR_ARGUMENT, "%s: op %d (\"%s\") takes %d operands, got %ld", fn,
                     op, rule->name, rule->arity, (long)n);
        else
            mc_error(MICROCRAD_ERR_ARGUMENT, "%s: op %d (\"%s\") cannot take %ld operands", fn,
                     op, rule->name, (long)n);
        return NULL;
    }
    if (n > 0 && !operands) {
        mc_error(MICROCRAD_ERR_NULL, "%s: operands is NULL but n is %ld", fn, (long)n);
        return NULL;
    }
    for (int32_t i = 0; i < n; i++)
        if (mc_check_slot(operands[i], fn, 4, "operands", i) != MICROCRAD_OK)
            return NULL;
    if (!rule->forward) /* leaf or custom: param is the data, as value_create's */
        return mc_node_new(fn, (microcrad_op)op, param, 0.0, (uint32_t)n, operands);
    return mc_node_new(fn, (microcrad_op)op, 0.0, rule->takes_param ? param : 0.0,
                       (uint32_t)n, operands);
}
