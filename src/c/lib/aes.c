/* AES-256-GCM encrypt/decrypt (AesEncryptRequest / AesDecryptRequest in payloads.py):
 * key id (u32), AAD length (u16), AAD, then plaintext or nonce || ciphertext || tag. */
#include "internal.h"

/* Bytes of an AES request payload besides AAD and data: key id + AAD length. */
#define AES_FIXED 6u

wvds_status wvds_aes_encrypt(wvds_conn *conn, uint32_t key_id, const void *aad, size_t aad_len, const void *plaintext,
                             size_t plaintext_len, void *sealed, size_t sealed_cap, size_t *sealed_len)
{
    if (!conn || key_id == 0 || !wvds_in_ok(aad, aad_len) || !wvds_in_ok(plaintext, plaintext_len) ||
        !wvds_out_ok(sealed, sealed_cap, sealed_len))
        return WVDS_ERR_ARGUMENT;
    if (aad_len > WVDS_AES_MAX_DATA || plaintext_len > WVDS_AES_MAX_DATA - aad_len)
        return WVDS_PAYLOAD_TOO_LARGE;
    size_t need = plaintext_len + WVDS_AES_SEALED_OVERHEAD;
    if (sealed_cap < need) {
        *sealed_len = need;
        return WVDS_ERR_BUFFER_TOO_SMALL;
    }
    wvds_call call;
    wvds_status st = wvds_call_begin(conn, &call);
    if (st != WVDS_SUCCESS)
        return st;
    wvds_put_u32(&call, key_id);
    wvds_put_u16(&call, (uint16_t)aad_len);
    wvds_put(&call, aad, aad_len);
    wvds_put(&call, plaintext, plaintext_len);
    call.keep_response = true; /* nonce || ciphertext || tag: nothing to wipe */
    st = wvds_call_run(&call, WVDS_REQ_AES_ENCRYPT);
    if (st == WVDS_SUCCESS)
        st = call.resp_len == need ? wvds_copy_out(call.resp, need, sealed, sealed_cap, sealed_len)
                                   : WVDS_ERR_PROTOCOL;
    wvds_call_end(&call);
    return st;
}

wvds_status wvds_aes_decrypt(wvds_conn *conn, uint32_t key_id, const void *aad, size_t aad_len, const void *sealed,
                             size_t sealed_len, void *plaintext, size_t plaintext_cap, size_t *plaintext_len)
{
    if (!conn || key_id == 0 || !wvds_in_ok(aad, aad_len) || !sealed || sealed_len < WVDS_AES_SEALED_OVERHEAD ||
        !wvds_out_ok(plaintext, plaintext_cap, plaintext_len))
        return WVDS_ERR_ARGUMENT;
    if (aad_len > WVDS_MAX_PAYLOAD - AES_FIXED || sealed_len > WVDS_MAX_PAYLOAD - AES_FIXED - aad_len)
        return WVDS_PAYLOAD_TOO_LARGE;
    size_t need = sealed_len - WVDS_AES_SEALED_OVERHEAD;
    if (plaintext_cap < need) {
        *plaintext_len = need;
        return WVDS_ERR_BUFFER_TOO_SMALL;
    }
    wvds_call call;
    wvds_status st = wvds_call_begin(conn, &call);
    if (st != WVDS_SUCCESS)
        return st;
    wvds_put_u32(&call, key_id);
    wvds_put_u16(&call, (uint16_t)aad_len);
    wvds_put(&call, aad, aad_len);
    wvds_put(&call, sealed, sealed_len);
    st = wvds_call_run(&call, WVDS_REQ_AES_DECRYPT);
    if (st == WVDS_SUCCESS)
        st = call.resp_len == need ? wvds_copy_out(call.resp, need, plaintext, plaintext_cap, plaintext_len)
                                   : WVDS_ERR_PROTOCOL;
    wvds_call_end(&call);
    return st;
}
