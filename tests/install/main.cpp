// A C++17 program using microcrad through the installed header and library only:
// check_install.sh builds it with pkg-config and with a C++-only CMake project.
//
// It includes the C header from C++, reads the documented fields `data` and `grad`
// directly, trains w in y = 2x for a few steps with one scope per step (no release
// calls), and checks that only w is left alive before releasing it.
#include <microcrad.h>

#include <cmath>
#include <cstdio>
#include <vector>

int main()
{
    std::printf("microcrad %s\n", microcrad_version());
    Value *w = value_create_leaf(0.5); // outside any scope: ours to release
    if (w == nullptr)
        return 1;
    const std::vector<double> xs = {1.0, -2.0, 0.5};
    double loss_data = 0.0;
    for (int step = 0; step < 50; step++) {
        microcrad_scope *scope = microcrad_scope_begin();
        std::vector<Value *> terms;
        for (double x : xs)
            terms.push_back(value_pow_const(value_sub_scalar(value_mul_scalar(w, x), 2.0 * x), 2.0));
        Value *loss = value_sum(static_cast<int32_t>(terms.size()), terms.data());
        if (loss == nullptr || value_set_grad(w, 0.0) != MICROCRAD_OK ||
            value_backward(loss) != MICROCRAD_OK) {
            std::fprintf(stderr, "step %d failed: %s\n", step, microcrad_last_error());
            return 1;
        }
        loss_data = loss->data;                             // the plain field, from C++
        value_set_data(w, w->data - 0.05 * w->grad);
        if (microcrad_scope_end(scope) != MICROCRAD_OK)
            return 1;
    }
    std::printf("w = %.6f, loss = %.3g\n", w->data, loss_data);
    const bool fitted = std::fabs(w->data - 2.0) < 1e-6;
    const bool only_w_alive = microcrad_live_values() == 1;
    value_release(w);
    if (!fitted || !only_w_alive || microcrad_live_values() != 0) {
        std::fprintf(stderr, "expected w = 2 and nothing else alive\n");
        return 1;
    }
    return 0;
}
