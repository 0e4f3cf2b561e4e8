/* stress.c — many threads signing and verifying with keys held by crypto_service, through wvds.
 *
 *   stress REF...     loads each reference file (PEM_read_PrivateKey: the decoder path), then
 *                     8 threads x 40 rounds of EVP_DigestSign + EVP_DigestVerify, keys mixed,
 *                     on a copy of the key (EVP_PKEY_dup) every other round.
 * Prints PASS and exits 0 when every operation succeeded. Run by test_sanitized.py under ASan/UBSan.
 */
#include <pthread.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define THREADS 8
#define ROUNDS 40
#define MAX_KEYS 8

static EVP_PKEY *keys[MAX_KEYS];
static int nkeys, failures;

static int round_trip(EVP_PKEY *key, long n)
{
    static const unsigned char msg[] = "stress: one request per signature";
    const char *md = EVP_PKEY_is_a(key, "EC") ? "SHA2-256" : NULL;
    unsigned char sig[5000];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *s = EVP_MD_CTX_new(), *v = EVP_MD_CTX_new();
    int ok = s && v && EVP_DigestSignInit_ex(s, NULL, md, NULL, NULL, key, NULL) > 0
             && EVP_DigestSign(s, sig, &siglen, msg, sizeof(msg)) > 0
             && EVP_DigestVerifyInit_ex(v, NULL, md, NULL, NULL, key, NULL) > 0
             && EVP_DigestVerify(v, sig, siglen, msg, sizeof(msg)) == 1;
    if (ok) { /* a flipped bit must not verify */
        sig[n % siglen] ^= 1;
        ok = EVP_DigestVerifyInit_ex(v, NULL, md, NULL, NULL, key, NULL) > 0
             && EVP_DigestVerify(v, sig, siglen, msg, sizeof(msg)) != 1;
        ERR_clear_error();
    }
    EVP_MD_CTX_free(s);
    EVP_MD_CTX_free(v);
    return ok;
}

static void *worker(void *arg)
{
    long id = (long)arg;
    for (long i = 0; i < ROUNDS; i++) {
        EVP_PKEY *key = keys[(id + i) % nkeys], *copy = (i & 1) ? EVP_PKEY_dup(key) : NULL;
        if (!round_trip(copy ? copy : key, id * ROUNDS + i)) {
            __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
            ERR_print_errors_fp(stderr);
        }
        EVP_PKEY_free(copy);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t threads[THREADS];

    for (int i = 1; i < argc && nkeys < MAX_KEYS; i++) {
        FILE *f = fopen(argv[i], "r");
        if (!f || (keys[nkeys++] = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL) {
            fprintf(stderr, "cannot load %s\n", argv[i]);
            ERR_print_errors_fp(stderr);
            return 2;
        }
        fclose(f);
    }
    if (nkeys == 0)
        return 2;
    for (long i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, worker, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < nkeys; i++)
        EVP_PKEY_free(keys[i]);
    printf("%s\n", failures ? "FAIL" : "PASS");
    return failures != 0;
}
