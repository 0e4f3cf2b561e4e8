/* Per-client token bucket (the original product's limiter, per client and configurable).
 * In C because both the Python dispatcher and the C fast path take tokens from it. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "wvds_srv.h"

struct wvds_srv_bucket {
    pthread_mutex_t lock;
    double rate, burst, cooldown; /* tokens/s, tokens, seconds */
    double tokens, last, blocked_until;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

wvds_srv_bucket *wvds_srv_bucket_new(double rate, uint32_t burst, double cooldown_s)
{
    wvds_srv_bucket *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    pthread_mutex_init(&b->lock, NULL);
    b->rate = rate > 0 ? rate : 0;
    b->burst = burst;
    b->cooldown = cooldown_s > 0 ? cooldown_s : 0;
    b->tokens = burst;
    b->last = now_s();
    return b;
}

int wvds_srv_bucket_allow(wvds_srv_bucket *b)
{
    if (!b || b->rate == 0)
        return 1;
    pthread_mutex_lock(&b->lock);
    double now = now_s();
    int ok = 0;
    if (now >= b->blocked_until) {
        b->tokens += (now - b->last) * b->rate;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->last = now;
        if (b->tokens >= 1.0) {
            b->tokens -= 1.0;
            ok = 1;
        } else {
            b->blocked_until = now + b->cooldown; /* a flooding client backs off instead of hovering */
        }
    }
    pthread_mutex_unlock(&b->lock);
    return ok;
}

void wvds_srv_bucket_free(wvds_srv_bucket *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->lock);
    free(b);
}
