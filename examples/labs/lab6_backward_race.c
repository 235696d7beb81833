/*
 * Lab 6 - two threads and a shared weight.
 *
 * Each of two threads fits its own sample against one shared weight w: it builds
 * its graph, back-propagates and releases the graph, 200 times. Reference counts
 * are atomic, so sharing w between the graphs is allowed; read microcrad.h,
 * "Threads", for what else is.
 *
 * Caught by: ThreadSanitizer (data race on the shared leaf's grad, in the backward
 * rule). Without TSan the program usually prints a plausible gradient: the race only
 * shows as an occasional wrong number. See README.md, lab 6.
 */
#include <microcrad.h>

#include <pthread.h>
#include <stdio.h>

enum { THREADS = 2, STEPS = 200 };

typedef struct job {
    Value *w;   /* the shared weight (the thread does not own it) */
    double x;   /* this thread's sample */
    double y;   /* and its target */
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
        if (!loss || value_backward(loss) != MICROCRAD_OK)
            j->failed = 1;
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

    /* Each step adds 2 (w x - y) x: -3 from thread 0 and 8 from thread 1. */
    printf("accumulated d loss/d w = %.1f (expected %.1f)\n", w->grad, STEPS * (-3.0 + 8.0));
    value_release(w);
    return jobs[0].failed || jobs[1].failed;
}
