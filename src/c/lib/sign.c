/* ML-DSA, SLH-DSA and ECDSA sign/verify (MldsaSignRequest, MldsaVerifyRequest, EcdsaSignRequest,
 * EcdsaVerifyRequest in payloads.py). Sign answers the signature; verify answers an
 * empty payload with SUCCESS or SIGNATURE_INVALID. */
#include "internal.h"

/* Sign responses are the bare signature; verify responses are empty. */
static wvds_status finish_sign(wvds_call *call, wvds_status st, void *sig, size_t cap, size_t *sig_len)
{
    if (st != WVDS_SUCCESS)
        return st;
    return call->resp_len > 0 ? wvds_copy_out(call->resp, call->resp_len, sig, cap, sig_len) : WVDS_ERR_PROTOCOL;
}

static wvds_status finish_verify(const wvds_call *call, wvds_status st)
{
    return st == WVDS_SUCCESS && call->resp_len != 0 ? WVDS_ERR_PROTOCOL : st;
}

/* --- ML-DSA and SLH-DSA: the same payloads, a request type each ---------------------------- */

static wvds_status pure_sign(wvds_conn *conn, wvds_request_type type, uint32_t key_id, const void *context,
                             size_t context_len, const void *message, size_t message_len, void *signature,
                             size_t signature_cap, size_t *signature_len)
{
    if (!conn || key_id == 0 || !wvds_in_ok(context, context_len) || context_len > WVDS_MAX_CONTEXT_SIZE ||
        !wvds_in_ok(message, message_len) || !wvds_out_ok(signature, signature_cap, signature_len))
        return WVDS_ERR_ARGUMENT;
    if (message_len > WVDS_MAX_PAYLOAD - 5 - context_len)
        return WVDS_PAYLOAD_TOO_LARGE;
    wvds_call call;
    wvds_status st = wvds_call_begin(conn, &call);
    if (st != WVDS_SUCCESS)
        return st;
    wvds_put_u32(&call, key_id);
    wvds_put_u8(&call, (uint8_t)context_len);
    wvds_put(&call, context, context_len);
    wvds_put(&call, message, message_len);
    st = finish_sign(&call, wvds_call_run(&call, type), signature, signature_cap, signature_len);
    wvds_call_end(&call);
    return st;
}

static wvds_status pure_verify(wvds_conn *conn, wvds_request_type type, const wvds_key_ref *key,
                               const void *context, size_t context_len, const void *message, size_t message_len,
                               const void *signature, size_t signature_len)
{
    bool (*family)(wvds_algorithm) = type == WVDS_REQ_SLHDSA_VERIFY ? wvds_is_slhdsa : wvds_is_mldsa;
    if (!conn || !wvds_key_ref_ok(key, family) || !wvds_in_ok(context, context_len) ||
        context_len > WVDS_MAX_CONTEXT_SIZE || !wvds_in_ok(message, message_len) || !signature ||
        signature_len == 0 || signature_len > UINT16_MAX)
        return WVDS_ERR_ARGUMENT;
    size_t fixed = wvds_key_ref_size(key) + 1 + context_len + 2 + signature_len;
    if (fixed > WVDS_MAX_PAYLOAD || message_len > WVDS_MAX_PAYLOAD - fixed)
        return WVDS_PAYLOAD_TOO_LARGE;
    wvds_call call;
    wvds_status st = wvds_call_begin(conn, &call);
    if (st != WVDS_SUCCESS)
        return st;
    wvds_put_key_ref(&call, key);
    wvds_put_u8(&call, (uint8_t)context_len);
    wvds_put(&call, context, context_len);
    wvds_put_u16(&call, (uint16_t)signature_len);
    wvds_put(&call, signature, signature_len);
    wvds_put(&call, message, message_len);
    st = finish_verify(&call, wvds_call_run(&call, type));
    wvds_call_end(&call);
    return st;
}

wvds_status wvds_mldsa_sign(wvds_conn *conn, uint32_t key_id, const void *context, size_t context_len,
                            const void *message, size_t message_len, void *signature, size_t signature_cap,
                            size_t *signature_len)
{
    return pure_sign(conn, WVDS_REQ_MLDSA_SIGN, key_id, context, context_len, message, message_len, signature,
                     signature_cap, signature_len);
}

wvds_status wvds_mldsa_verify(wvds_conn *conn, uint32_t key_id, const void *context, size_t context_len,
                              const void *message, size_t message_len, const void *signature, size_t signature_len)
{
    wvds_key_ref key = {.key_id = key_id};
    return pure_verify(conn, WVDS_REQ_MLDSA_VERIFY, &key, context, context_len, message, message_len, signature,
                       signature_len);
}

wvds_status wvds_mldsa_verify_inline(wvds_conn *conn, wvds_algorithm algorithm, const void *public_key,
                                     size_t public_key_len, const void *context, size_t context_len,
                                     const void *message, size_t message_len, const void *signature,
                                     size_t signature_len)
{
    wvds_key_ref key = {.is_inline = true, .algorithm = algorithm, .public_key = public_key,
                        .public_key_len = public_key_len};
    return pure_verify(conn, WVDS_REQ_MLDSA_VERIFY, &key, context, context_len, message, message_len, signature,
                       signature_len);
}

wvds_status wvds_slhdsa_sign(wvds_conn *conn, uint32_t key_id, const void *context, size_t context_len,
                             const void *message, size_t message_len, void *signature, size_t signature_cap,
                             size_t *signature_len)
{
    return pure_sign(conn, WVDS_REQ_SLHDSA_SIGN, key_id, context, context_len, message, message_len, signature,
                     signature_cap, signature_len);
}

wvds_status wvds_slhdsa_verify(wvds_conn *conn, uint32_t key_id, const void *context, size_t context_len,
                               const void *message, size_t message_len, const void *signature, size_t signature_len)
{
    wvds_key_ref key = {.key_id = key_id};
    return pure_verify(conn, WVDS_REQ_SLHDSA_VERIFY, &key, context, context_len, message, message_len, signature,
                       signature_len);
}

wvds_status wvds_slhdsa_verify_inline(wvds_conn *conn, wvds_algorithm algorithm, const void *public_key,
                                      size_t public_key_len, const void *context, size_t context_len,
                                      const void *message, size_t message_len, const void *signature,
                                      size_t signature_len)
{
    wvds_key_ref key = {.is_inline = true, .algorithm = algorithm, .public_key = public_key,
                        .public_key_len = public_key_len};
    return pure_verify(conn, WVDS_REQ_SLHDSA_VERIFY, &key, context, context_len, message, message_len, signature,
                       signature_len);
}

/* --- ECDSA --------------------------------------------------------------------------- */

static size_t digest_size(wvds_hash_alg hash)
{
    switch (hash) {
    case WVDS_HASH_SHA256:
        return 32;
    case WVDS_HASH_SHA384:
        return 48;
    case WVDS_HASH_SHA512:
        return 64;
    case WVDS_HASH_DEFAULT:
        return 0; /* depends on the key's curve */
    }
    return 0;
}

static bool ecdsa_args_ok(wvds_hash_alg hash, uint32_t flags, const void *data, size_t data_len)
{
    bool known_hash = hash == WVDS_HASH_DEFAULT || digest_size(hash) != 0;
    if (!known_hash || (flags & ~WVDS_ECDSA_FLAGS_ALL) || !wvds_in_ok(data, data_len))
        return false;
    if (flags & WVDS_ECDSA_PREHASHED) /* a digest: of the named hash, or of either default */
        return hash == WVDS_HASH_DEFAULT ? data_len == 32 || data_len == 48 : data_len == digest_size(hash);
    return true;
}

wvds_status wvds_ecdsa_sign(wvds_conn *conn, uint32_t key_id, wvds_hash_alg hash, uint32_t flags, const void *data,
                            size_t data_len, void *signature, size_t signature_cap, size_t *signature_len)
{
    if (!conn || key_id == 0 || !ecdsa_args_ok(hash, flags, data, data_len) ||
        !wvds_out_ok(signature, signature_cap, signature_len))
        return WVDS_ERR_ARGUMENT;
    if (data_len > WVDS_MAX_PAYLOAD - 6)
        return WVDS_PAYLOAD_TOO_LARGE;
    wvds_call call;
    wvds_status st = wvds_call_begin(conn, &call);
    if (st != WVDS_SUCCESS)
        return st;
    wvds_put_u32(&call, key_id);
    wvds_put_u8(&call, (uint8_t)hash);
    wvds_put_u8(&call, (uint8_t)flags);
    wvds_put(&call, data, data_len);
    st = finish_sign(&call, wvds_call_run(&call, WVDS_REQ_ECDSA_SIGN), signature, signature_cap, signature_len);
    wvds_call_end(&call);
    return st;
}

static wvds_status ecdsa_verify(wvds_conn *conn, const wvds_key_ref *key, wvds_hash_alg hash, uint32_t flags,
                                const void *data, size_t data_len, const void *signature, size_t signature_len)
{
    if (!conn || !wvds_key_ref_ok(key, wvds_is_ecdsa) || !ecdsa_args_ok(hash, flags, data, data_len) ||
        !signature || signature_len == 0 || signature_len > UINT16_MAX)
        return WVDS_ERR_ARGUMENT;
    size_t fixed = wvds_key_ref_size(key) + 1 + 1 + 2 + signature_len;
    if (fixed > WVDS_MAX_PAYLOAD || data_len > WVDS_MAX_PAYLOAD - fixed)
        return WVDS_PAYLOAD_TOO_LARGE;
    wvds_call call;
    wvds_status st = wvds_call_begin(conn, &call);
    if (st != WVDS_SUCCESS)
        return st;
    wvds_put_key_ref(&call, key);
    wvds_put_u8(&call, (uint8_t)hash);
    wvds_put_u8(&call, (uint8_t)flags);
    wvds_put_u16(&call, (uint16_t)signature_len);
    wvds_put(&call, signature, signature_len);
    wvds_put(&call, data, data_len);
    st = finish_verify(&call, wvds_call_run(&call, WVDS_REQ_ECDSA_VERIFY));
    wvds_call_end(&call);
    return st;
}

wvds_status wvds_ecdsa_verify(wvds_conn *conn, uint32_t key_id, wvds_hash_alg hash, uint32_t flags, const void *data,
                              size_t data_len, const void *signature, size_t signature_len)
{
    wvds_key_ref key = {.key_id = key_id};
    return ecdsa_verify(conn, &key, hash, flags, data, data_len, signature, signature_len);
}

wvds_status wvds_ecdsa_verify_inline(wvds_conn *conn, wvds_algorithm algorithm, const void *public_key,
                                     size_t public_key_len, wvds_hash_alg hash, uint32_t flags, const void *data,
                                     size_t data_len, const void *signature, size_t signature_len)
{
    wvds_key_ref key = {.is_inline = true, .algorithm = algorithm, .public_key = public_key,
                        .public_key_len = public_key_len};
    return ecdsa_verify(conn, &key, hash, flags, data, data_len, signature, signature_len);
}
