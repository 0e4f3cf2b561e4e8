/* What moving 64 KiB between two cores costs on this machine, next to the same copies
 * within one core: the floor under any shared-memory service's bulk throughput
 * (docs/performance.md).
 *
 *   gcc -O2 -pthread -o /tmp/copy_cost bench/copy_cost.c && /tmp/copy_cost
 *
 * "client" (CPU 0) writes 64 KiB into a shared buffer, "service" (CPU 1) reads it and writes
 * 64 KiB of answer, the client reads the answer: the two copies a copying client makes per
 * request, timed on the client, against the same two copies with both buffers in its cache. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N 65536
#define ROUNDS 50000

static unsigned char *request, *response, *src, *dst, *scratch;
static atomic_int turn; /* 0: client's, 1: service's, 2: stop */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static void *service(void *arg)
{
    (void)arg;
    pin(1);
    for (;;) {
        int t;
        while ((t = atomic_load(&turn)) == 0)
            ;
        if (t == 2)
            return NULL;
        memcpy(scratch, request, N); /* reads the request */
        memcpy(response, scratch, N); /* writes the answer */
        atomic_store(&turn, 0);
    }
}

int main(void)
{
    request = aligned_alloc(64, N), response = aligned_alloc(64, N);
    src = aligned_alloc(64, N), dst = aligned_alloc(64, N), scratch = aligned_alloc(64, N);
    memset(src, 3, N);
    memset(request, 0, N);
    memset(response, 0, N);
    pin(0);
    pthread_t t;
    pthread_create(&t, NULL, service, NULL);
    double copies = 0, start = now();
    for (int i = 0; i < ROUNDS; i++) {
        double a = now();
        memcpy(request, src, N);
        copies += now() - a;
        atomic_store(&turn, 1);
        while (atomic_load(&turn) != 0)
            ;
        a = now();
        memcpy(dst, response, N);
        copies += now() - a;
    }
    double round_trip = (now() - start) / ROUNDS;
    atomic_store(&turn, 2);
    pthread_join(t, NULL);
    start = now();
    for (int i = 0; i < ROUNDS; i++) {
        memcpy(request, src, N);
        memcpy(dst, request, N);
        __asm__ volatile("" ::"r"(dst) : "memory");
    }
    double hot = (now() - start) / ROUNDS;
    printf("client's two 64 KiB copies, data crossing cores: %.2f us (round trip %.2f us)\n",
           copies / ROUNDS * 1e6, round_trip * 1e6);
    printf("the same two copies within one core:              %.2f us\n", hot * 1e6);
    return 0;
}
