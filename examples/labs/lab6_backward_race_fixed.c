/*
 * Lab 6, fixed: the backward passes over graphs that share the weight are serialised
 * by one mutex. Building and releasing the graphs stays outside the lock; only the
 * part that writes gradients is inside. See lab6_backward_race.c and README.md.
 */
#include <microcrad.h>

#include <pthread.h>
#include <stdio.h>

enum { THREADS = 2, STEPS = 200 };

/* FIX: guards every backward pass over a graph containing the shared weight. */
static pthread_mutex_t backward_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct job {
    Value *w;
    double x;
    double y;
    int failed;
} job;

static void *fit(void *arg)
{
    job *j = arg;
    for (int step = 0; step < STEPS; step++) {
        Value *x = value_create_leaf(j->x);
        Value *y = value_create_leaf(j->y);
        Value *prediction = value_mul(j->w, x);
        Value *error = value_sub(prediction, y);
        Value *loss = value_mul(error, error);
        pthread_mutex_lock(&backward_lock);
        if (!loss || value_backward(loss) != MICROCRAD_OK)
            j->failed = 1;
        pthread_mutex_unlock(&backward_lock);
        value_release(loss);
        value_release(error);
        value_release(prediction);
        value_release(y);
        value_release(x);
    }
    return NULL;
}

int main(void)
{
    Value *w = value_create_leaf(0.5);
    if (!w)
        return 1;
    job jobs[THREADS] = {{w, 1.0, 2.0, 0}, {w, -2.0, 1.0, 0}};
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&threads[i], NULL, fit, &jobs[i]) != 0)
            return 1;
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);

    const double expected = STEPS * (-3.0 + 8.0);
    printf("accumulated d loss/d w = %.1f (expected %.1f)\n", w->grad, expected);
    int ok = w->grad == expected && !jobs[0].failed && !jobs[1].failed;
    value_release(w);
    return ok && microcrad_live_values() == 0 ? 0 : 1;
}
