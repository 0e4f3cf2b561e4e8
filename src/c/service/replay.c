/* Replay windows for AES-256-GCM decryption (docs/replay.md).
 *
 * A replay-protected key's nonces are structured (SP 800-38D 8.2.1, deterministic
 * construction): a 4-byte fixed field, the *epoch* (one per run of the encrypting
 * service, persisted before use, so it only grows), and an 8-byte invocation field
 * that the FIPS provider starts at a random value and increments by one per
 * encryption. So each epoch is a *stream* of consecutive counters, and replay
 * detection is the IPsec/DTLS sliding window, per stream: the newest counter seen
 * (hwm) and one bit per counter for the `window` counters up to it. Exact: a nonce in
 * the window is refused iff it was accepted before; a nonce older than the window,
 * or of an epoch older than every epoch still tracked, is refused too (it cannot be
 * told apart from a replay, and accepting it would make the window pointless).
 *
 * Durable without an fsync per decryption: the window is a MAP_SHARED mapping of a
 * file, so every update is in the page cache when the store instruction retires, and
 * a process that dies at any instant (kill -9, OOM, crash) leaves every update it made
 * before it answered. Each update is a single aligned 64-bit store (a word carries its
 * block number beside its 32 bits, so moving the window never clears anything), so no
 * instant leaves a torn state. With `sync` set each update is also msync()ed before
 * the answer, which extends that to power cuts, at the price measured in bench/.
 *
 * The file is allocated in full when it is made (posix_fallocate), so updates never need a
 * block: on a full file system they go on working, where a store into a hole would be SIGBUS.
 *
 * File layout (native byte order: the file never leaves the device):
 *   page 0: struct file_head, then `streams` struct stream_head
 *   page 1...: per stream, `words` uint64_t: block number << 32 | 32 bits of counters
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wvds_srv.h"

#define MAGIC 0x50525657u /* "WVRP" */
#define VERSION 1u
#define PAGE 4096u
#define BITS 32u
/* A stream's counters are taken relative to base = first counter seen - BACK, and must stay
 * below SPAN: then a block number fits 32 bits, so a word's tag is the whole block number and
 * two blocks never alias. An encrypting service's stream is at most 2^32 counters long (the
 * GCM invocation limit). */
#define BACK (1ull << 35)
#define SPAN (1ull << 37)

enum { STREAM_FREE = 0, STREAM_LIVE = 1, STREAM_INIT = 2 };

struct file_head {
    uint32_t magic, version, window, streams, words, sync_unused;
    uint64_t floor; /* lowest epoch still accepted (epochs below it were evicted) */
};

struct stream_head {
    uint64_t state_epoch; /* state << 32 | epoch, stored at once */
    uint64_t base;
    uint64_t hwm; /* newest counter accepted, relative to base; 0: none yet */
    uint64_t reserved;
};

struct wvds_srv_replay {
    pthread_mutex_t lock;
    int fd; /* -1: anonymous memory (a key store without files) */
    bool sync;
    size_t size;
    uint8_t *map;
    struct file_head *head;
    struct stream_head *streams;
    uint64_t *words;
};

static size_t words_for(uint32_t window)
{
    return window / BITS + (window % BITS != 0) + 1; /* +1: the block of the oldest counter is partly out */
}

static size_t file_size(uint32_t window, uint32_t streams)
{
    size_t bytes = (size_t)streams * words_for(window) * sizeof(uint64_t);
    return PAGE + (bytes + PAGE - 1) / PAGE * PAGE;
}

static void put(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static uint64_t get(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void layout(wvds_srv_replay *r)
{
    r->head = (struct file_head *)r->map;
    r->streams = (struct stream_head *)(r->map + sizeof(struct file_head));
    r->words = (uint64_t *)(r->map + PAGE);
}

static wvds_srv_replay *fail(wvds_srv_replay *r, int *os_error, char *err, size_t errlen, const char *what, int e)
{
    if (os_error)
        *os_error = e;
    if (err && errlen)
        snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", e ? strerror(e) : "");
    if (r) {
        if (r->map && r->map != MAP_FAILED)
            munmap(r->map, r->size);
        if (r->fd >= 0)
            close(r->fd);
        free(r);
    }
    return NULL;
}

wvds_srv_replay *wvds_srv_replay_open(const char *path, uint32_t window, uint32_t streams, int sync, int *os_error,
                                      char *err, size_t errlen)
{
    if (window < 1 || window > WVDS_REPLAY_MAX_WINDOW || streams < 1 || streams > WVDS_REPLAY_MAX_STREAMS)
        return fail(NULL, os_error, err, errlen, "window or stream count out of range", 0);
    wvds_srv_replay *r = calloc(1, sizeof *r);
    if (!r)
        return fail(NULL, os_error, err, errlen, "out of memory", 0);
    r->fd = -1;
    r->sync = sync && path;
    bool fresh = true;
    if (!path) {
        r->size = file_size(window, streams);
        r->map = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (r->map == MAP_FAILED)
            return fail(r, os_error, err, errlen, "mmap", errno);
    } else {
        r->fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        struct stat st;
        if (r->fd < 0 || fstat(r->fd, &st) != 0)
            return fail(r, os_error, err, errlen, "open", errno);
        if (!S_ISREG(st.st_mode))
            return fail(r, os_error, err, errlen, "not a regular file", 0);
        fresh = st.st_size == 0;
        if (fresh) {
            /* Every block allocated now: a store into a hole of a full file system would be a SIGBUS. */
            r->size = file_size(window, streams);
            int e = posix_fallocate(r->fd, 0, (off_t)r->size);
            if (e != 0) /* the caller removes the file */
                return fail(r, os_error, err, errlen, "allocating the window", e);
        } else {
            /* The geometry an existing window was created with stays (docs/replay.md). */
            struct file_head h;
            if (st.st_size < (off_t)PAGE || pread(r->fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
                return fail(r, os_error, err, errlen, "truncated window file", 0);
            if (h.magic != MAGIC || h.version != VERSION || h.window < 1 || h.window > WVDS_REPLAY_MAX_WINDOW ||
                h.streams < 1 || h.streams > WVDS_REPLAY_MAX_STREAMS || h.words != words_for(h.window) ||
                (off_t)file_size(h.window, h.streams) != st.st_size)
                return fail(r, os_error, err, errlen, "not a window file of this version (bad header)", 0);
            window = h.window, streams = h.streams;
            r->size = (size_t)st.st_size;
            if (st.st_blocks * 512 < st.st_size) /* made sparse by a copy: allocate, or refuse (see above) */
                if (posix_fallocate(r->fd, 0, st.st_size) != 0)
                    return fail(r, os_error, err, errlen, "window file is sparse and cannot be allocated", 0);
        }
        r->map = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
        if (r->map == MAP_FAILED)
            return fail(r, os_error, err, errlen, "mmap", errno);
    }
    layout(r);
    if (fresh) {
        *r->head = (struct file_head){MAGIC, VERSION, window, streams, (uint32_t)words_for(window), 0, 0};
        if (r->fd >= 0 && (msync(r->map, PAGE, MS_SYNC) != 0 || fsync(r->fd) != 0))
            return fail(r, os_error, err, errlen, "msync", errno);
    }
    for (uint32_t i = 0; i < streams; i++) /* an interrupted start of a stream never accepted anything */
        if (get(&r->streams[i].state_epoch) >> 32 == STREAM_INIT)
            put(&r->streams[i].state_epoch, 0);
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void wvds_srv_replay_close(wvds_srv_replay *r)
{
    if (!r)
        return;
    munmap(r->map, r->size);
    if (r->fd >= 0)
        close(r->fd);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* The live stream of `epoch`, or a new one; NULL if the epoch is older than every epoch the
 * window still tracks (or below the floor). */
static struct stream_head *stream_of(wvds_srv_replay *r, uint32_t epoch, uint64_t counter, uint64_t **words)
{
    const struct file_head *h = r->head;
    struct stream_head *s = NULL, *victim = NULL;
    uint64_t floor = get(&h->floor);
    if (epoch < floor)
        return NULL;
    for (uint32_t i = 0; i < h->streams; i++) {
        struct stream_head *c = &r->streams[i];
        uint64_t se = get(&c->state_epoch);
        bool live = se >> 32 == STREAM_LIVE && (uint32_t)se >= floor;
        if (live && (uint32_t)se == epoch) {
            *words = r->words + (size_t)i * h->words;
            return c;
        }
        if (!live)
            s = s ? s : c;
        else if (!victim || (uint32_t)se < (uint32_t)get(&victim->state_epoch))
            victim = c;
    }
    if (!s) { /* all taken: the oldest epoch goes, and with it every epoch up to it */
        uint32_t old = (uint32_t)get(&victim->state_epoch);
        if (epoch < old)
            return NULL;
        put(&r->head->floor, (uint64_t)old + 1);
        s = victim;
    }
    size_t i = (size_t)(s - r->streams);
    put(&s->state_epoch, (uint64_t)STREAM_INIT << 32 | epoch);
    s->base = counter - BACK;
    s->hwm = 0;
    memset(r->words + i * h->words, 0, h->words * sizeof(uint64_t));
    put(&s->state_epoch, (uint64_t)STREAM_LIVE << 32 | epoch);
    *words = r->words + i * h->words;
    return s;
}

static void sync_page(const void *p)
{
    uintptr_t page = (uintptr_t)p & ~(uintptr_t)(PAGE - 1);
    msync((void *)page, PAGE, MS_SYNC);
}

int wvds_srv_replay_check(wvds_srv_replay *r, const uint8_t *nonce)
{
    uint32_t epoch = be32(nonce);
    uint64_t counter = be64(nonce + 4);
    int verdict = WVDS_REPLAY_OLD;
    pthread_mutex_lock(&r->lock);
    uint64_t *words = NULL;
    struct stream_head *s = stream_of(r, epoch, counter, &words);
    if (!s)
        goto out;
    uint64_t o = counter - s->base, hwm = get(&s->hwm), window = r->head->window;
    if (o == 0 || o >= SPAN || (o <= hwm && hwm - o >= window))
        goto out; /* before the stream's range, or older than the window */
    uint64_t block = o / BITS, *w = &words[block % r->head->words], cur = get(w);
    uint64_t bit = 1ull << (o % BITS), mine = cur >> 32 == block ? cur : block << 32;
    if (mine & bit) {
        verdict = WVDS_REPLAY_SEEN;
        goto out;
    }
    if (o > hwm)
        put(&s->hwm, o);
    put(w, mine | bit);
    if (r->sync) {
        sync_page(w);
        sync_page(s);
    }
    verdict = WVDS_REPLAY_FRESH;
out:
    pthread_mutex_unlock(&r->lock);
    return verdict;
}

void wvds_srv_replay_raise_floor(wvds_srv_replay *r, uint32_t epoch)
{
    pthread_mutex_lock(&r->lock);
    if (epoch > get(&r->head->floor)) {
        put(&r->head->floor, epoch);
        for (uint32_t i = 0; i < r->head->streams; i++)
            if ((uint32_t)get(&r->streams[i].state_epoch) < epoch)
                put(&r->streams[i].state_epoch, 0);
        if (r->fd >= 0)
            msync(r->map, PAGE, MS_SYNC);
    }
    pthread_mutex_unlock(&r->lock);
}

uint64_t wvds_srv_replay_bytes(const wvds_srv_replay *r)
{
    return r->size;
}
