/* wvds-keyref — write a key reference file for a signing key held by crypto_service.
 *
 *   wvds-keyref [--socket PATH] [--out FILE] KEY_ID
 *   wvds-keyref [--socket PATH] [--out FILE] --generate ALGORITHM [--label TEXT]
 *
 * KEY_ID is decimal or 0x-hex; the key must exist and be visible to the calling user, and its
 * algorithm is taken from the service. --generate first creates a new key (usage SIGN|VERIFY,
 * owned by the caller). The socket is --socket, else $WVDS_SOCKET, else /run/wvds/crypto.sock,
 * and is written into the reference. The reference holds no secret (see keyref.h).
 * Exit status: 0 done, 1 the service failed or refused, 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyref.h"
#include "wvds_crypto.h"

static int usage(void)
{
    fprintf(stderr, "usage: wvds-keyref [--socket PATH] [--out FILE] KEY_ID\n"
                    "       wvds-keyref [--socket PATH] [--out FILE] --generate ALGORITHM [--label TEXT]\n"
                    "ALGORITHM: ML-DSA-44 ML-DSA-65 ML-DSA-87 ECDSA-P256 ECDSA-P384\n"
                    "           SLH-DSA-{SHA2,SHAKE}-{128,192,256}{s,f}\n");
    return 2;
}

static int fail(const char *what, wvds_status st)
{
    fprintf(stderr, "wvds-keyref: %s: %s\n", what, wvds_status_name(st));
    return 1;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"socket", required_argument, NULL, 's'}, {"out", required_argument, NULL, 'o'},
        {"generate", required_argument, NULL, 'g'}, {"label", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *socket = getenv(WVDS_SOCKET_ENV), *out = NULL, *generate = NULL, *label = NULL;
    wvds_keyref ref = {0};
    wvds_conn *conn = NULL;
    wvds_status st;
    char pem[WVDS_KEYREF_MAX_PEM];
    size_t pem_len;
    int c;

    while ((c = getopt_long(argc, argv, "s:o:g:l:h", options, NULL)) != -1) {
        switch (c) {
        case 's': socket = optarg; break;
        case 'o': out = optarg; break;
        case 'g': generate = optarg; break;
        case 'l': label = optarg; break;
        default: return usage();
        }
    }
    if (!socket || !socket[0])
        socket = WVDS_DEFAULT_SOCKET;
    if (strlen(socket) > WVDS_KEYREF_MAX_SOCKET || (generate != NULL) == (optind < argc) || argc - optind > 1
        || (label && !generate))
        return usage();
    memcpy(ref.socket, socket, strlen(socket) + 1);
    if (generate) {
        if (!wvds_keyref_alg_from_name(generate, strlen(generate), &ref.algorithm))
            return usage();
    } else {
        char *end;
        unsigned long id;
        errno = 0;
        id = strtoul(argv[optind], &end, 0);
        if (errno || *end || id == 0 || id > 0xFFFFFFFFul || argv[optind][0] == '-')
            return usage();
        ref.key_id = (uint32_t)id;
    }

    if ((st = wvds_connect(socket, &conn)) != WVDS_SUCCESS)
        return fail(socket, st);
    if (generate) {
        st = wvds_key_generate(conn, ref.algorithm, 0, label, &ref.key_id, NULL, 0, NULL);
        wvds_close(conn);
        if (st != WVDS_SUCCESS && st != WVDS_ERR_BUFFER_TOO_SMALL) /* (the public key was not wanted) */
            return fail("generating the key", st);
    } else {
        unsigned char public_key[WVDS_MAX_PUBLIC_KEY_SIZE];
        size_t public_len;
        st = wvds_key_export_public(conn, ref.key_id, &ref.algorithm, public_key, sizeof(public_key), &public_len);
        wvds_close(conn);
        if (st == WVDS_SUCCESS && !wvds_keyref_alg_name(ref.algorithm))
            st = WVDS_UNSUPPORTED_ALGORITHM; /* an ML-KEM key */
        if (st == WVDS_UNSUPPORTED_ALGORITHM) {
            fprintf(stderr, "wvds-keyref: key 0x%08x is not a signature key (ML-DSA, SLH-DSA, ECDSA)\n",
                    (unsigned)ref.key_id);
            return 1;
        }
        if (st != WVDS_SUCCESS)
            return fail("looking the key up", st);
    }

    if (!wvds_keyref_to_pem(&ref, pem, sizeof(pem), &pem_len))
        return fail("encoding the reference", WVDS_ERR_ARGUMENT);
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f || fwrite(pem, 1, pem_len, f) != pem_len || (out && fclose(f) != 0)) {
        fprintf(stderr, "wvds-keyref: %s: %s\n", out ? out : "stdout", strerror(errno));
        return 1;
    }
    if (out)
        fprintf(stderr, "wvds-keyref: %s: key 0x%08x (%s) at %s\n", out, (unsigned)ref.key_id,
                wvds_keyref_alg_name(ref.algorithm), ref.socket);
    return 0;
}
