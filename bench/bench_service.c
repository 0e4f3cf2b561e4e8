/* Service vs in-process OpenSSL, measured in one process run.
 *
 * Each figure is taken twice: through crypto_service (C client library, shared
 * memory) and directly with OpenSSL EVP in this process, on the same OpenSSL
 * build with the same FIPS configuration. bench/run_bench.py builds and runs it.
 *
 *   bench_service SOCKET [seconds-per-test]
 *   bench_service SOCKET fill KEYS N       (full replay windows for bench/replay_restart.py)
 */
#define _GNU_SOURCE
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wvds_crypto.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc) {
    fprintf(stderr, "bench: %s failed: %s (0x%x)\n", what, wvds_status_name((wvds_status)rc), rc);
    exit(1);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double seconds_per_test = 2.0;
static const char *socket_path;

/* ---- in-process OpenSSL ------------------------------------------------------------ */

static int evp_aes_gcm(const unsigned char *key, const unsigned char *pt, size_t n, unsigned char *out) {
    /* Same work as the service does per request: a fresh context, provider-generated IV. */
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    static EVP_CIPHER *gcm;
    int len, ok;
    unsigned char iv[12], tag[16];
    if (!gcm) gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    ok = ctx && EVP_EncryptInit_ex2(ctx, gcm, key, NULL, NULL) && EVP_EncryptUpdate(ctx, out, &len, pt, (int)n) &&
         EVP_EncryptFinal_ex(ctx, out + len, &len) &&
         EVP_CIPHER_CTX_get_updated_iv(ctx, iv, sizeof iv) &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag);
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

static EVP_PKEY *evp_keygen(const char *alg) {
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
    if (!c || EVP_PKEY_keygen_init(c) <= 0 || EVP_PKEY_keygen(c, &k) <= 0) k = NULL;
    EVP_PKEY_CTX_free(c);
    return k;
}

static EVP_SIGNATURE *mldsa65; /* fetched once in main(), as the service fetches it once */

static int evp_mldsa_sign(EVP_PKEY *k, const unsigned char *msg, size_t n, unsigned char *sig, size_t *siglen) {
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
    int ok = c && EVP_PKEY_sign_message_init(c, mldsa65, NULL) > 0 && EVP_PKEY_sign(c, sig, siglen, msg, n) > 0;
    EVP_PKEY_CTX_free(c);
    return ok;
}

/* ---- measurements ------------------------------------------------------------------- */

typedef struct {
    double p50_us, p99_us;
} latency;

#define LAT_N 20000
static double samples[LAT_N];

static latency latency_of(int (*op)(void *), void *arg) {
    for (int i = 0; i < 1000; i++) op(arg); /* warm-up */
    for (int i = 0; i < LAT_N; i++) {
        double t = now();
        op(arg);
        samples[i] = (now() - t) * 1e6;
    }
    qsort(samples, LAT_N, sizeof *samples, cmp_double);
    return (latency){samples[LAT_N / 2], samples[LAT_N * 99 / 100]};
}

static double rate_of(int (*op)(void *), void *arg) {
    long n = 0;
    double start = now(), end = start + seconds_per_test;
    while (now() < end) {
        op(arg);
        n++;
    }
    return n / (now() - start);
}

typedef struct {
    wvds_conn *conn;
    uint32_t key_id;
    unsigned char *in, *out;
    size_t n;
    EVP_PKEY *pkey;
    unsigned char aes_key[32];
} ctx_t;

static int svc_random16(void *a) {
    ctx_t *c = a;
    int rc = wvds_random(c->conn, c->out, 16);
    if (rc) die("random", rc);
    return 0;
}
static int svc_aes(void *a) {
    ctx_t *c = a;
    size_t len;
    int rc = wvds_aes_encrypt(c->conn, c->key_id, NULL, 0, c->in, c->n, c->out, c->n + 28, &len);
    if (rc) die("aes_encrypt", rc);
    return 0;
}
static int evp_aes(void *a) {
    ctx_t *c = a;
    if (!evp_aes_gcm(c->aes_key, c->in, c->n, c->out)) die("EVP AES-GCM", 0x105);
    return 0;
}
/* A stream of STREAM_BYTES: 60 KiB chunk requests, several in flight (the library's pipeline). */
#define STREAM_BYTES (64u * WVDS_STREAM_CHUNK_SIZE)
static int svc_stream(void *a) {
    ctx_t *c = a;
    size_t len;
    int rc = wvds_stream_encrypt(c->conn, c->key_id, NULL, 0, c->in, STREAM_BYTES, c->out,
                                 wvds_stream_sealed_size(STREAM_BYTES), &len);
    if (rc) die("stream_encrypt", rc);
    return 0;
}
static int evp_stream(void *a) { /* the same chunks, one after the other, in this process */
    ctx_t *c = a;
    for (size_t off = 0; off < STREAM_BYTES; off += WVDS_STREAM_CHUNK_SIZE)
        if (!evp_aes_gcm(c->aes_key, c->in + off, WVDS_STREAM_CHUNK_SIZE, c->out + off)) die("EVP AES-GCM", 0x105);
    return 0;
}
/* Zero-copy jobs, JOBS in flight: each request's plaintext is produced straight into shared
 * memory (copied from c->in, standing in for a sensor or socket read), the sealed result is
 * used where the service wrote it. */
#define JOBS 4
static wvds_aes_job *jobs[JOBS];
static unsigned jobs_head, jobs_count;

static void finish_oldest_job(size_t expect) {
    const uint8_t *out;
    size_t out_len;
    int rc = wvds_aes_job_wait(jobs[jobs_head], &out, &out_len);
    if (rc || out_len != expect) die("aes_job_wait", rc ? rc : 0x102);
    wvds_aes_job_end(jobs[jobs_head]);
    jobs_head = (jobs_head + 1) % JOBS;
    jobs_count--;
}
static void submit_job(ctx_t *c, int copy_in) {
    size_t cap;
    uint8_t *in;
    if (jobs_count == JOBS) finish_oldest_job(c->n + WVDS_AES_SEALED_OVERHEAD);
    wvds_aes_job **j = &jobs[(jobs_head + jobs_count) % JOBS];
    int rc = wvds_aes_job_begin(c->conn, WVDS_REQ_AES_ENCRYPT, c->key_id, NULL, 0, j, &in, &cap);
    if (rc) die("aes_job_begin", rc);
    if (copy_in) memcpy(in, c->in, c->n);
    rc = wvds_aes_job_submit(*j, c->n);
    if (rc) die("aes_job_submit", rc);
    jobs_count++;
}
static int svc_jobs(void *a) {
    submit_job(a, 1);
    return 0;
}
/* The same jobs without the client's copy into shared memory: the service finds each job's plaintext where
 * it read it last time (its own cache), so the difference to svc_jobs is what moving 64 KiB from the
 * client's core to the service's costs (docs/performance.md, "What the AMD EPYC VM loses"). */
static int svc_jobs_resubmit(void *a) {
    submit_job(a, 0);
    return 0;
}
/* --- the bulk-AES analysis (run_bench.py --aes-jobs): only the 64 KiB figures, each twice ---------- */
static int aes_jobs_analysis(ctx_t *c) {
    c->n = WVDS_AES_MAX_DATA;
    printf("{\"bytes\": %zu, \"in_flight\": %d, \"runs\": [", c->n, JOBS);
    for (int run = 0; run < 2; run++) {
        double evp = rate_of(evp_aes, c) * c->n / 1e6;
        double jobs_copy = rate_of(svc_jobs, c) * c->n / 1e6;
        while (jobs_count) finish_oldest_job(c->n + WVDS_AES_SEALED_OVERHEAD);
        double jobs_resubmit = rate_of(svc_jobs_resubmit, c) * c->n / 1e6;
        while (jobs_count) finish_oldest_job(c->n + WVDS_AES_SEALED_OVERHEAD);
        double one = rate_of(svc_aes, c) * c->n / 1e6;
        printf("%s{\"inprocess\": %.1f, \"jobs\": %.1f, \"jobs_without_client_copy\": %.1f, \"one_at_a_time\": %.1f}",
               run ? ", " : "", evp, jobs_copy, jobs_resubmit, one);
    }
    printf("]}\n");
    return 0;
}
static int svc_sign(void *a) {
    ctx_t *c = a;
    size_t len;
    int rc = wvds_mldsa_sign(c->conn, c->key_id, NULL, 0, c->in, 64, c->out, 5000, &len);
    if (rc) die("mldsa_sign", rc);
    return 0;
}
static int evp_sign(void *a) {
    ctx_t *c = a;
    size_t len = 5000;
    if (!evp_mldsa_sign(c->pkey, c->in, 64, c->out, &len)) die("EVP ML-DSA sign", 0x105);
    return 0;
}
static int svc_kemgen(void *a) {
    ctx_t *c = a;
    uint32_t id;
    size_t len;
    int rc = wvds_mlkem_keygen(c->conn, WVDS_ALG_ML_KEM_768, 0, NULL, &id, c->out, 2000, &len);
    if (rc) die("mlkem_keygen", rc);
    rc = wvds_key_delete(c->conn, id); /* keep the key table small; costs one small request */
    if (rc) die("key_delete", rc);
    return 0;
}
static int evp_kemgen(void *a) {
    (void)a;
    EVP_PKEY *k = evp_keygen("ML-KEM-768");
    if (!k) die("EVP ML-KEM keygen", 0x105);
    EVP_PKEY_free(k);
    return 0;
}

/* Verify, encaps, decaps: small public-key requests (the service answers them in C once the key is granted). */
typedef struct {
    wvds_conn *conn;
    uint32_t dsa_id, kem_id;
    EVP_PKEY *dsa, *kem;
    unsigned char msg[64], sig[5000], mysig[5000], ct[1088], myct[1088];
    size_t siglen, mysiglen;
} pub_t;

static int svc_verify(void *a) {
    pub_t *p = a;
    int rc = wvds_mldsa_verify(p->conn, p->dsa_id, NULL, 0, p->msg, 64, p->sig, p->siglen);
    if (rc) die("mldsa_verify", rc);
    return 0;
}
static int evp_verify(void *a) {
    pub_t *p = a;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, p->dsa, NULL);
    int ok = c && EVP_PKEY_verify_message_init(c, mldsa65, NULL) > 0 &&
             EVP_PKEY_verify(c, p->mysig, p->mysiglen, p->msg, 64) == 1;
    EVP_PKEY_CTX_free(c);
    if (!ok) die("EVP ML-DSA verify", 0x105);
    return 0;
}
static int svc_encaps(void *a) {
    pub_t *p = a;
    size_t len;
    uint32_t id;
    uint8_t secret[32];
    int rc = wvds_mlkem_encaps(p->conn, p->kem_id, WVDS_KEM_RETURN_SECRET, p->ct, sizeof p->ct, &len, &id, secret);
    if (rc) die("mlkem_encaps", rc);
    return 0;
}
static int evp_encaps(void *a) {
    pub_t *p = a;
    uint8_t secret[32];
    size_t len = sizeof p->myct, slen = sizeof secret;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, p->kem, NULL);
    int ok = c && EVP_PKEY_encapsulate_init(c, NULL) > 0 && EVP_PKEY_encapsulate(c, p->myct, &len, secret, &slen) > 0;
    EVP_PKEY_CTX_free(c);
    if (!ok) die("EVP ML-KEM encapsulate", 0x105);
    return 0;
}
static int svc_decaps(void *a) {
    pub_t *p = a;
    uint32_t id;
    uint8_t secret[32];
    int rc = wvds_mlkem_decaps(p->conn, p->kem_id, WVDS_KEM_RETURN_SECRET, p->ct, sizeof p->ct, &id, secret);
    if (rc) die("mlkem_decaps", rc);
    return 0;
}
static int evp_decaps(void *a) {
    pub_t *p = a;
    uint8_t secret[32];
    size_t slen = sizeof secret;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, p->kem, NULL);
    int ok = c && EVP_PKEY_decapsulate_init(c, NULL) > 0 &&
             EVP_PKEY_decapsulate(c, secret, &slen, p->myct, sizeof p->myct) > 0;
    EVP_PKEY_CTX_free(c);
    if (!ok) die("EVP ML-KEM decapsulate", 0x105);
    return 0;
}

static void public_key_figures(ctx_t *c, uint32_t sign_id, EVP_PKEY *dsa) {
    static pub_t p;
    p.conn = c->conn, p.dsa_id = sign_id, p.dsa = dsa;
    memset(p.msg, 0x33, sizeof p.msg);
    p.mysiglen = sizeof p.mysig;
    if (!evp_mldsa_sign(dsa, p.msg, 64, p.mysig, &p.mysiglen)) die("EVP ML-DSA sign", 0x105);
    int rc = wvds_mldsa_sign(c->conn, sign_id, NULL, 0, p.msg, 64, p.sig, sizeof p.sig, &p.siglen);
    if (rc) die("mldsa_sign", rc);
    unsigned char pk[2000];
    size_t pklen;
    rc = wvds_mlkem_keygen(c->conn, WVDS_ALG_ML_KEM_768,
                           WVDS_USAGE_ENCAPS | WVDS_USAGE_DECAPS | WVDS_USAGE_RELEASE_SECRET, "bench", &p.kem_id, pk,
                           sizeof pk, &pklen);
    if (rc) die("mlkem_keygen", rc);
    p.kem = evp_keygen("ML-KEM-768");
    svc_encaps(&p), evp_encaps(&p); /* a ciphertext for each side's decapsulations */
    printf("  \"mldsa65_verify_per_s\": {\"service\": %.1f, \"inprocess\": %.1f},\n", rate_of(svc_verify, &p),
           rate_of(evp_verify, &p));
    printf("  \"mlkem768_encaps_per_s\": {\"service\": %.1f, \"inprocess\": %.1f},\n", rate_of(svc_encaps, &p),
           rate_of(evp_encaps, &p));
    printf("  \"mlkem768_decaps_per_s\": {\"service\": %.1f, \"inprocess\": %.1f},\n", rate_of(svc_decaps, &p),
           rate_of(evp_decaps, &p));
    EVP_PKEY_free(p.kem);
}

/* ---- replay protection: decryption with and without (docs/replay.md) ------------------ */

typedef struct {
    double p50_us, p99_us, per_s;
} decrypt_figures;

static decrypt_figures figures_of(double *lat, int count, double total_s) {
    qsort(lat, count, sizeof *lat, cmp_double);
    return (decrypt_figures){lat[count / 2], lat[count * 99 / 100], count / total_s};
}

/* Seals `count` distinct messages of n bytes with the service, then decrypts each once (a protected
 * key refuses a second time), timing every request. */
static decrypt_figures svc_decrypt_figures(wvds_conn *conn, uint32_t key_id, size_t n, int count) {
    size_t sealed_len = n + WVDS_AES_SEALED_OVERHEAD, len;
    uint8_t *sealed = malloc(sealed_len * count), *pt = malloc(n + 1), *in = calloc(1, n + 1);
    double *lat = malloc(sizeof *lat * count);
    for (int i = 0; i < count; i++) {
        int rc = wvds_aes_encrypt(conn, key_id, NULL, 0, in, n, sealed + i * sealed_len, sealed_len, &len);
        if (rc) die("aes_encrypt", rc);
    }
    double start = now();
    for (int i = 0; i < count; i++) {
        double t = now();
        int rc = wvds_aes_decrypt(conn, key_id, NULL, 0, sealed + i * sealed_len, sealed_len, pt, n + 1, &len);
        lat[i] = (now() - t) * 1e6;
        if (rc) die("aes_decrypt", rc);
    }
    decrypt_figures f = figures_of(lat, count, now() - start);
    free(sealed), free(pt), free(in), free(lat);
    return f;
}

/* The same in this process: EVP decryption of `count` messages (sealed here with IVs set by the
 * benchmark, which only the baseline may do). */
static decrypt_figures evp_decrypt_figures(const unsigned char *key, size_t n, int count) {
    EVP_CIPHER *gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    size_t rec = 12 + n + 16;
    uint8_t *sealed = malloc(rec * count), *pt = malloc(n + 1), *in = calloc(1, n + 1);
    double *lat = malloc(sizeof *lat * count);
    int len, ok = gcm != NULL;
    for (int i = 0; i < count && ok; i++) {
        uint8_t *r = sealed + i * rec;
        memset(r, 0, 12);
        memcpy(r, &i, sizeof i);
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        ok = ctx && EVP_EncryptInit_ex2(ctx, gcm, key, r, NULL) && EVP_EncryptUpdate(ctx, r + 12, &len, in, (int)n) &&
             EVP_EncryptFinal_ex(ctx, r + 12 + len, &len) &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, r + 12 + n);
        EVP_CIPHER_CTX_free(ctx);
    }
    double start = now();
    for (int i = 0; i < count && ok; i++) {
        const uint8_t *r = sealed + i * rec;
        double t = now();
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new(); /* a fresh context per message, as the service */
        ok = ctx && EVP_DecryptInit_ex2(ctx, gcm, key, r, NULL) && EVP_DecryptUpdate(ctx, pt, &len, r + 12, (int)n) &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (void *)(r + 12 + n)) &&
             EVP_DecryptFinal_ex(ctx, pt + len, &len) > 0;
        EVP_CIPHER_CTX_free(ctx);
        lat[i] = (now() - t) * 1e6;
    }
    if (!ok) die("EVP AES-GCM decrypt", 0x105);
    decrypt_figures f = figures_of(lat, count, now() - start);
    EVP_CIPHER_free(gcm);
    free(sealed), free(pt), free(in), free(lat);
    return f;
}

static void print_decrypt(const char *name, decrypt_figures f, const char *sep) {
    printf("\"%s\": {\"p50\": %.2f, \"p99\": %.2f, \"per_s\": %.1f}%s", name, f.p50_us, f.p99_us, f.per_s, sep);
}

/* Replay protection on (the default) vs off (a REPLAYABLE key): decryption and encryption. */
static void replay_figures(ctx_t *c) {
    uint32_t open_key;
    int rc = wvds_key_import(c->conn, WVDS_ALG_AES_256_GCM, WVDS_USAGE_REPLAYABLE, WVDS_KEY_FORMAT_RAW, "bench-open",
                             c->aes_key, 32, &open_key);
    if (rc) die("key_import", rc);
    printf("  \"replay\": {");
    const size_t sizes[] = {64, WVDS_AES_MAX_DATA};
    for (int s = 0; s < 2; s++) {
        int count = sizes[s] > 4096 ? 2000 : LAT_N;
        printf("%s\"decrypt_%zu\": {", s ? ", " : "", sizes[s]);
        print_decrypt("protected", svc_decrypt_figures(c->conn, c->key_id, sizes[s], count), ", ");
        print_decrypt("replayable", svc_decrypt_figures(c->conn, open_key, sizes[s], count), ", ");
        print_decrypt("inprocess", evp_decrypt_figures(c->aes_key, sizes[s], count), "}");
    }
    ctx_t o = *c;
    o.key_id = open_key;
    o.n = c->n = 64;
    latency p = latency_of(svc_aes, c), r = latency_of(svc_aes, &o);
    printf(", \"encrypt_64_us\": {\"protected\": {\"p50\": %.2f, \"p99\": %.2f}, "
           "\"replayable\": {\"p50\": %.2f, \"p99\": %.2f}}},\n", p.p50_us, p.p99_us, r.p50_us, r.p99_us);
}

/* `fill KEYS N`: KEYS protected keys, each with N messages sealed and decrypted once: full windows for the
 * restart benchmark (bench/replay_restart.py). Prints the key ids. */
static int fill(wvds_conn *conn, int keys, long n) {
    enum { BATCH = 4096 };
    uint8_t key[32] = {0}, *sealed = malloc((size_t)BATCH * (64 + WVDS_AES_SEALED_OVERHEAD)), in[64] = {0}, pt[65];
    size_t rec = 64 + WVDS_AES_SEALED_OVERHEAD, len;
    for (int k = 0; k < keys; k++) {
        uint32_t id;
        int rc = wvds_key_import(conn, WVDS_ALG_AES_256_GCM, 0, WVDS_KEY_FORMAT_RAW, "fill", key, 32, &id);
        if (rc) die("key_import", rc);
        for (long done = 0; done < n; done += BATCH) {
            int b = n - done < BATCH ? (int)(n - done) : BATCH;
            for (int i = 0; i < b; i++)
                if ((rc = wvds_aes_encrypt(conn, id, NULL, 0, in, 64, sealed + i * rec, rec, &len))) die("encrypt", rc);
            for (int i = 0; i < b; i++)
                if ((rc = wvds_aes_decrypt(conn, id, NULL, 0, sealed + i * rec, rec, pt, sizeof pt, &len)))
                    die("decrypt", rc);
        }
        printf("%u\n", id);
    }
    free(sealed);
    return 0;
}

static wvds_conn *connect_or_die(void) {
    wvds_conn *conn;
    wvds_options o = {.timeout_ms = 30000};
    int rc = wvds_connect_ex(socket_path, &o, &conn);
    if (rc) die("connect", rc);
    return conn;
}

typedef struct {
    int (*op)(void *);
    double rate;
    ctx_t ctx;
} thread_job;

static void *run_thread(void *a) {
    thread_job *j = a;
    j->rate = rate_of(j->op, &j->ctx);
    return NULL;
}

/* Aggregate rate of `op` with `threads` concurrent clients (own connection each when service). */
static double scaled_rate(int (*op)(void *), ctx_t *proto, int threads, int own_conn) {
    thread_job jobs[16];
    pthread_t t[16];
    double total = 0;
    for (int i = 0; i < threads; i++) {
        jobs[i] = (thread_job){op, 0, *proto};
        jobs[i].ctx.in = malloc(70000);
        jobs[i].ctx.out = malloc(70000);
        memset(jobs[i].ctx.in, 0x5a, 70000);
        if (own_conn) jobs[i].ctx.conn = connect_or_die();
        pthread_create(&t[i], NULL, run_thread, &jobs[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        total += jobs[i].rate;
        if (own_conn) wvds_close(jobs[i].ctx.conn);
        free(jobs[i].ctx.in);
        free(jobs[i].ctx.out);
    }
    return total;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SOCKET [seconds-per-test [aes-jobs]]\n", argv[0]);
        return 2;
    }
    socket_path = argv[1];
    if (argc == 5 && strcmp(argv[2], "fill") == 0) return fill(connect_or_die(), atoi(argv[3]), atol(argv[4]));
    if (argc > 2) seconds_per_test = atof(argv[2]);
    if (!EVP_default_properties_is_fips_enabled(NULL) || !OSSL_PROVIDER_available(NULL, "fips")) {
        fprintf(stderr, "bench: in-process OpenSSL is not in FIPS mode (set OPENSSL_CONF)\n");
        return 1;
    }
    mldsa65 = EVP_SIGNATURE_fetch(NULL, "ML-DSA-65", NULL);
    if (!mldsa65) die("EVP_SIGNATURE_fetch ML-DSA-65", 0x105);
    ctx_t c = {0};
    c.conn = connect_or_die();
    c.in = malloc(70000);
    c.out = malloc(70000);
    memset(c.in, 0x5a, 70000);
    memset(c.aes_key, 7, 32);
    int rc = wvds_key_import(c.conn, WVDS_ALG_AES_256_GCM, 0, WVDS_KEY_FORMAT_RAW, "bench", c.aes_key, 32, &c.key_id);
    if (rc) die("key_import", rc);

    if (argc > 3 && strcmp(argv[3], "aes-jobs") == 0) return aes_jobs_analysis(&c);
    printf("{\n");
    latency l = latency_of(svc_random16, &c);
    printf("  \"random16_service_us\": {\"p50\": %.2f, \"p99\": %.2f},\n", l.p50_us, l.p99_us);
    c.n = 64;
    l = latency_of(svc_aes, &c);
    latency e = latency_of(evp_aes, &c);
    printf("  \"aes64_service_us\": {\"p50\": %.2f, \"p99\": %.2f},\n", l.p50_us, l.p99_us);
    printf("  \"aes64_inprocess_us\": {\"p50\": %.2f, \"p99\": %.2f},\n", e.p50_us, e.p99_us);
    replay_figures(&c);

    c.n = WVDS_AES_MAX_DATA;
    double svc = rate_of(svc_aes, &c) * c.n / 1e6, evp = rate_of(evp_aes, &c) * c.n / 1e6;
    printf("  \"aes_max_request_MBps\": {\"service\": %.1f, \"inprocess\": %.1f, \"bytes\": %zu},\n", svc, evp, c.n);
    svc = rate_of(svc_jobs, &c) * c.n / 1e6;
    while (jobs_count) finish_oldest_job(c.n + WVDS_AES_SEALED_OVERHEAD);
    printf("  \"aes_jobs_MBps\": {\"service\": %.1f, \"inprocess\": %.1f, \"bytes\": %zu, \"in_flight\": %d},\n", svc,
           evp, c.n, JOBS);
    ctx_t st = c;
    st.in = malloc(STREAM_BYTES);
    st.out = malloc(wvds_stream_sealed_size(STREAM_BYTES));
    memset(st.in, 0x5a, STREAM_BYTES);
    svc = rate_of(svc_stream, &st) * STREAM_BYTES / 1e6;
    evp = rate_of(evp_stream, &st) * STREAM_BYTES / 1e6;
    printf("  \"aes_stream_MBps\": {\"service\": %.1f, \"inprocess\": %.1f, \"chunk\": %u, \"bytes\": %u},\n", svc,
           evp, WVDS_STREAM_CHUNK_SIZE, STREAM_BYTES);
    free(st.in);
    free(st.out);

    uint32_t sign_id;
    size_t pklen;
    unsigned char pk[3000];
    rc = wvds_key_generate(c.conn, WVDS_ALG_ML_DSA_65, 0, "bench", &sign_id, pk, sizeof pk, &pklen);
    if (rc) die("key_generate", rc);
    ctx_t s = c;
    s.key_id = sign_id;
    s.pkey = evp_keygen("ML-DSA-65");
    printf("  \"mldsa65_sign_per_s\": {\"service\": %.1f, \"inprocess\": %.1f},\n", rate_of(svc_sign, &s),
           rate_of(evp_sign, &s));
    printf("  \"mlkem768_keygen_per_s\": {\"service\": %.1f, \"inprocess\": %.1f},\n", rate_of(svc_kemgen, &c),
           rate_of(evp_kemgen, &c));
    public_key_figures(&c, sign_id, s.pkey);
    printf("  \"mldsa65_sign_scaling\": [");
    for (int threads = 1; threads <= 4; threads *= 2) {
        double sv = scaled_rate(svc_sign, &s, threads, 1), ip = scaled_rate(evp_sign, &s, threads, 0);
        printf("%s{\"clients\": %d, \"service\": %.1f, \"inprocess\": %.1f}", threads > 1 ? ", " : "", threads, sv,
               ip);
    }
    printf("]\n}\n");
    EVP_PKEY_free(s.pkey);
    wvds_close(c.conn);
    return 0;
}
