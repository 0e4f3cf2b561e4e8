/* ML-KEM keygen / encaps / decaps (KeyGenerateRequest, MlkemEncapsRequest/Response,
 * MlkemDecapsRequest/Response in payloads.py). Without RETURN_SECRET the service keeps
 * the shared secret as a new AES key and answers its id; with it, the secret itself. */
#include <string.h>

#include "internal.h"

wvds_status wvds_mlkem_keygen(wvds_conn *conn, wvds_algorithm algorithm, uint32_t usage, const char *label,
                              uint32_t *key_id, void *public_key, size_t public_key_cap, size_t *public_key_len)
{
    if (!wvds_is_mlkem(algorithm))
        return WVDS_ERR_ARGUMENT;
    return wvds_key_create(conn, WVDS_REQ_MLKEM_KEYGEN, algorithm, usage, label, key_id, public_key, public_key_cap,
                           public_key_len);
}

/* The outputs the flags ask for must be there; the others may be NULL. */
static bool outputs_ok(uint32_t flags, const uint32_t *new_key_id, const uint8_t *secret)
{
    if (flags & ~WVDS_KEM_FLAGS_ALL)
        return false;
    return (flags & WVDS_KEM_RETURN_SECRET) ? secret != NULL : new_key_id != NULL;
}

/* The tail both responses share: a key id when the secret stayed in the service, the
 * secret (exactly 32 bytes) when it was asked for. */
static wvds_status settle(uint32_t flags, uint32_t key_id, const uint8_t *secret, size_t secret_len,
                          uint32_t *new_key_id, uint8_t *secret_out)
{
    if (flags & WVDS_KEM_RETURN_SECRET) {
        if (secret_len != WVDS_SHARED_SECRET_SIZE)
            return WVDS_ERR_PROTOCOL;
        memcpy(secret_out, secret, WVDS_SHARED_SECRET_SIZE);
        key_id = 0;
    } else if (secret_len != 0 || key_id == 0) {
        return WVDS_ERR_PROTOCOL;
    }
    if (new_key_id)
        *new_key_id = key_id;
    return WVDS_SUCCESS;
}

static wvds_status encaps(wvds_conn *conn, const wvds_key_ref *key, uint32_t flags, void *ciphertext,
                          size_t ciphertext_cap, size_t *ciphertext_len, uint32_t *new_key_id, uint8_t *secret)
{
    if (!conn || !wvds_key_ref_ok(key, wvds_is_mlkem) || !outputs_ok(flags, new_key_id, secret) ||
        !wvds_out_ok(ciphertext, ciphertext_cap, ciphertext_len))
        return WVDS_ERR_ARGUMENT;
    if (new_key_id)
        *new_key_id = 0;
    wvds_call call;
    wvds_status st = wvds_call_begin(conn, &call);
    if (st != WVDS_SUCCESS)
        return st;
    wvds_put_key_ref(&call, key);
    wvds_put_u8(&call, (uint8_t)flags);
    st = wvds_call_run(&call, WVDS_REQ_MLKEM_ENCAPS);
    if (st == WVDS_SUCCESS) {
        wvds_reader r = wvds_call_reader(&call);
        uint32_t id = wvds_rd_u32(&r);
        size_t ct_len = wvds_rd_u16(&r);
        const uint8_t *ct = wvds_rd_bytes(&r, ct_len);
        size_t secret_len = wvds_rd_u8(&r);
        const uint8_t *sec = wvds_rd_bytes(&r, secret_len);
        size_t expect_ct = key->is_inline ? wvds_mlkem_ciphertext_size(key->algorithm) : 0;
        if (!wvds_rd_end(&r) || ct_len == 0 || (expect_ct && ct_len != expect_ct))
            st = WVDS_ERR_PROTOCOL;
        else
            st = settle(flags, id, sec, secret_len, new_key_id, secret);
        /* With a too-small ciphertext buffer *new_key_id is still set: the caller can delete that key. */
        if (st == WVDS_SUCCESS)
            st = wvds_copy_out(ct, ct_len, ciphertext, ciphertext_cap, ciphertext_len);
        if (st == WVDS_ERR_BUFFER_TOO_SMALL && secret)
            memset(secret, 0, WVDS_SHARED_SECRET_SIZE); /* useless without its ciphertext */
    }
    wvds_call_end(&call);
    return st;
}

wvds_status wvds_mlkem_encaps(wvds_conn *conn, uint32_t key_id, uint32_t flags, void *ciphertext,
                              size_t ciphertext_cap, size_t *ciphertext_len, uint32_t *new_key_id, uint8_t *secret)
{
    wvds_key_ref key = {.key_id = key_id};
    return encaps(conn, &key, flags, ciphertext, ciphertext_cap, ciphertext_len, new_key_id, secret);
}

wvds_status wvds_mlkem_encaps_inline(wvds_conn *conn, wvds_algorithm algorithm, const void *public_key,
                                     size_t public_key_len, uint32_t flags, void *ciphertext, size_t ciphertext_cap,
                                     size_t *ciphertext_len, uint32_t *new_key_id, uint8_t *secret)
{
    wvds_key_ref key = {.is_inline = true, .algorithm = algorithm, .public_key = public_key,
                        .public_key_len = public_key_len};
    return encaps(conn, &key, flags, ciphertext, ciphertext_cap, ciphertext_len, new_key_id, secret);
}

wvds_status wvds_mlkem_decaps(wvds_conn *conn, uint32_t key_id, uint32_t flags, const void *ciphertext,
                              size_t ciphertext_len, uint32_t *new_key_id, uint8_t *secret)
{
    if (!conn || key_id == 0 || !outputs_ok(flags, new_key_id, secret) || !ciphertext || ciphertext_len == 0)
        return WVDS_ERR_ARGUMENT;
    if (ciphertext_len > WVDS_MAX_PAYLOAD - 5)
        return WVDS_PAYLOAD_TOO_LARGE;
    if (new_key_id)
        *new_key_id = 0;
    wvds_call call;
    wvds_status st = wvds_call_begin(conn, &call);
    if (st != WVDS_SUCCESS)
        return st;
    wvds_put_u32(&call, key_id);
    wvds_put_u8(&call, (uint8_t)flags);
    wvds_put(&call, ciphertext, ciphertext_len);
    st = wvds_call_run(&call, WVDS_REQ_MLKEM_DECAPS);
    if (st == WVDS_SUCCESS) {
        wvds_reader r = wvds_call_reader(&call);
        uint32_t id = wvds_rd_u32(&r);
        size_t secret_len = wvds_rd_u8(&r);
        const uint8_t *sec = wvds_rd_bytes(&r, secret_len);
        st = wvds_rd_end(&r) ? settle(flags, id, sec, secret_len, new_key_id, secret) : WVDS_ERR_PROTOCOL;
    }
    wvds_call_end(&call);
    return st;
}
