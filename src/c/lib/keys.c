/* Key management, random bytes and the service status (KeyGenerateRequest,
 * KeyImportRequest, KeyIdRequest, KeyExportRequest, KeyListRequest, RandomRequest and
 * their responses in payloads.py). */
#define _GNU_SOURCE
#include <string.h>

#include "internal.h"

static bool key_format_ok(wvds_key_format f)
{
    switch (f) {
    case WVDS_KEY_FORMAT_RAW:
    case WVDS_KEY_FORMAT_SEED:
    case WVDS_KEY_FORMAT_EXPANDED:
    case WVDS_KEY_FORMAT_PUBLIC:
        return true;
    }
    return false;
}

/* KeyCreatedResponse: key id (u32, non-zero), public key length (u16), public key of the
 * algorithm's size (none for AES). */
static bool parse_key_created(const wvds_call *call, wvds_algorithm alg, uint32_t *id, const uint8_t **pk,
                              size_t *pk_len)
{
    wvds_reader r = wvds_call_reader(call);
    *id = wvds_rd_u32(&r);
    *pk_len = wvds_rd_u16(&r);
    *pk = wvds_rd_bytes(&r, *pk_len);
    return wvds_rd_end(&r) && *id != 0 && *pk_len == wvds_public_key_size(alg);
}

wvds_status wvds_key_create(wvds_conn *conn, uint8_t type, wvds_algorithm algorithm, uint32_t usage, const char *label,
                            uint32_t *key_id, void *public_key, size_t public_key_cap, size_t *public_key_len)
{
    size_t label_len;
    if (!conn || !wvds_is_algorithm(algorithm) || (usage & ~WVDS_USAGE_ALL) || !wvds_label_ok(label, &label_len) ||
        !key_id || (public_key && !public_key_len))
        return WVDS_ERR_ARGUMENT;
    *key_id = 0;
    if (public_key_len)
        *public_key_len = 0;
    wvds_call call;
    wvds_status st = wvds_call_begin(conn, &call);
    if (st != WVDS_SUCCESS)
        return st;
    wvds_put_u8(&call, (uint8_t)algorithm);
    wvds_put_u32(&call, usage);
    wvds_put_u8(&call, (uint8_t)label_len);
    wvds_put(&call, label, label_len);
    st = wvds_call_run(&call, type);
    if (st == WVDS_SUCCESS) {
        uint32_t id;
        const uint8_t *pk;
        size_t pk_len;
        if (!parse_key_created(&call, algorithm, &id, &pk, &pk_len)) {
            st = WVDS_ERR_PROTOCOL;
        } else {
            *key_id = id; /* the key exists even if its public key does not fit */
            if (public_key)
                st = wvds_copy_out(pk, pk_len, public_key, public_key_cap, public_key_len);
            else if (public_key_len)
                *public_key_len = pk_len;
        }
    }
    wvds_call_end(&call);
    return st;
}

wvds_status wvds_key_generate(wvds_conn *conn, wvds_algorithm algorithm, uint32_t usage, const char *label,
                              uint32_t *key_id, void *public_key, size_t public_key_cap, size_t *public_key_len)
{
    return wvds_key_create(conn, WVDS_REQ_KEY_GENERATE, algorithm, usage, label, key_id, public_key, public_key_cap,
                           public_key_len);
}

wvds_status wvds_key_import(wvds_conn *conn, wvds_algorithm algorithm, uint32_t usage, wvds_key_format format,
                            const char *label, const void *material, size_t material_len, uint32_t *key_id)
{
    size_t label_len;
    if (!conn || !wvds_is_algorithm(algorithm) || (usage & ~WVDS_USAGE_ALL) || !key_format_ok(format) ||
        !wvds_label_ok(label, &label_len) || !material || material_len == 0 || !key_id)
        return WVDS_ERR_ARGUMENT;
    *key_id = 0;
    if (material_len > WVDS_MAX_PAYLOAD - 7 - label_len)
        return WVDS_PAYLOAD_TOO_LARGE;
    wvds_call call;
    wvds_status st = wvds_call_begin(conn, &call);
    if (st != WVDS_SUCCESS)
        return st;
    wvds_put_u8(&call, (uint8_t)algorithm);
    wvds_put_u32(&call, usage);
    wvds_put_u8(&call, (uint8_t)format);
    wvds_put_u8(&call, (uint8_t)label_len);
    wvds_put(&call, label, label_len);
    wvds_put(&call, material, material_len);
    st = wvds_call_run(&call, WVDS_REQ_KEY_IMPORT);
    if (st == WVDS_SUCCESS) {
        uint32_t id;
        const uint8_t *pk;
        size_t pk_len;
        if (parse_key_created(&call, algorithm, &id, &pk, &pk_len))
            *key_id = id;
        else
            st = WVDS_ERR_PROTOCOL;
    }
    wvds_call_end(&call);
    return st;
}

/* Requests whose payload is just a key id (KEY_EXPORT_PUBLIC, KEY_DELETE, KEY_DESCRIBE). */
static wvds_status key_id_call(wvds_conn *conn, wvds_call *call, uint8_t type, uint32_t key_id)
{
    wvds_status st = wvds_call_begin(conn, call);
    if (st != WVDS_SUCCESS)
        return st;
    wvds_put_u32(call, key_id);
    return wvds_call_run(call, type);
}

wvds_status wvds_key_export_public(wvds_conn *conn, uint32_t key_id, wvds_algorithm *algorithm, void *public_key,
                                   size_t public_key_cap, size_t *public_key_len)
{
    if (!conn || key_id == 0 || !wvds_out_ok(public_key, public_key_cap, public_key_len))
        return WVDS_ERR_ARGUMENT;
    wvds_call call;
    wvds_status st = key_id_call(conn, &call, WVDS_REQ_KEY_EXPORT_PUBLIC, key_id);
    if (st == WVDS_SUCCESS) { /* PublicKeyResponse: algorithm (u8), public key (rest) */
        wvds_reader r = wvds_call_reader(&call);
        wvds_algorithm alg = (wvds_algorithm)wvds_rd_u8(&r);
        size_t n = r.left;
        const uint8_t *pk = wvds_rd_bytes(&r, n);
        if (!wvds_rd_end(&r) || n == 0) {
            st = WVDS_ERR_PROTOCOL;
        } else {
            if (algorithm)
                *algorithm = alg;
            st = wvds_copy_out(pk, n, public_key, public_key_cap, public_key_len);
        }
    }
    wvds_call_end(&call);
    return st;
}

wvds_status wvds_key_export(wvds_conn *conn, uint32_t key_id, wvds_key_format format, void *material,
                            size_t material_cap, size_t *material_len)
{
    if (!conn || key_id == 0 || !key_format_ok(format) || !wvds_out_ok(material, material_cap, material_len))
        return WVDS_ERR_ARGUMENT;
    wvds_call call;
    wvds_status st = wvds_call_begin(conn, &call);
    if (st != WVDS_SUCCESS)
        return st;
    wvds_put_u32(&call, key_id);
    wvds_put_u8(&call, (uint8_t)format);
    st = wvds_call_run(&call, WVDS_REQ_KEY_EXPORT);
    if (st == WVDS_SUCCESS) /* the key material in the requested format, nothing else */
        st = call.resp_len ? wvds_copy_out(call.resp, call.resp_len, material, material_cap, material_len)
                           : WVDS_ERR_PROTOCOL;
    wvds_call_end(&call);
    return st;
}

wvds_status wvds_key_delete(wvds_conn *conn, uint32_t key_id)
{
    if (!conn || key_id == 0)
        return WVDS_ERR_ARGUMENT;
    wvds_call call;
    wvds_status st = key_id_call(conn, &call, WVDS_REQ_KEY_DELETE, key_id);
    if (st == WVDS_SUCCESS && call.resp_len != 0)
        st = WVDS_ERR_PROTOCOL;
    wvds_call_end(&call);
    return st;
}

wvds_status wvds_key_list(wvds_conn *conn, uint32_t start_after, wvds_key_entry *entries, size_t cap, size_t *count,
                          int *more)
{
    if (!conn || !wvds_out_ok(entries, cap, count) || !more)
        return WVDS_ERR_ARGUMENT;
    *more = 0;
    wvds_call call;
    wvds_status st = wvds_call_begin(conn, &call);
    if (st != WVDS_SUCCESS)
        return st;
    wvds_put_u32(&call, start_after);
    st = wvds_call_run(&call, WVDS_REQ_KEY_LIST);
    if (st == WVDS_SUCCESS) { /* more (u8), count (u16), count x (key id u32, algorithm u8) */
        wvds_reader r = wvds_call_reader(&call);
        int has_more = wvds_rd_u8(&r) != 0;
        size_t n = wvds_rd_u16(&r);
        if (r.bad || r.left != n * 5 || n > WVDS_KEY_LIST_MAX_ENTRIES) {
            st = WVDS_ERR_PROTOCOL;
        } else if (n > cap) {
            *count = n;
            st = WVDS_ERR_BUFFER_TOO_SMALL;
        } else {
            uint32_t last = start_after;
            for (size_t i = 0; i < n && st == WVDS_SUCCESS; i++) {
                uint32_t id = wvds_rd_u32(&r);
                entries[i].key_id = id;
                entries[i].algorithm = (wvds_algorithm)wvds_rd_u8(&r);
                if (id <= last) /* ascending and after start_after, or paging would loop */
                    st = WVDS_ERR_PROTOCOL;
                last = id;
            }
            if (st == WVDS_SUCCESS) {
                *count = n;
                *more = has_more;
            }
        }
    }
    wvds_call_end(&call);
    return st;
}

wvds_status wvds_key_describe(wvds_conn *conn, uint32_t key_id, wvds_key_info *info)
{
    if (!conn || key_id == 0 || !info)
        return WVDS_ERR_ARGUMENT;
    memset(info, 0, sizeof *info);
    wvds_call call;
    wvds_status st = key_id_call(conn, &call, WVDS_REQ_KEY_DESCRIBE, key_id);
    if (st == WVDS_SUCCESS) { /* KeyDescription */
        wvds_reader r = wvds_call_reader(&call);
        wvds_key_info k;
        memset(&k, 0, sizeof k);
        k.key_id = wvds_rd_u32(&r);
        k.algorithm = (wvds_algorithm)wvds_rd_u8(&r);
        k.usage = wvds_rd_u32(&r);
        k.owner_uid = wvds_rd_u32(&r);
        k.created = wvds_rd_u64(&r);
        k.uses = wvds_rd_u64(&r);
        size_t label_len = wvds_rd_u8(&r);
        const uint8_t *label = wvds_rd_bytes(&r, label_len);
        if (!wvds_rd_end(&r) || k.key_id != key_id || label_len > WVDS_MAX_LABEL_SIZE ||
            !wvds_utf8_ok(label, label_len)) {
            st = WVDS_ERR_PROTOCOL;
        } else {
            memcpy(k.label, label, label_len);
            *info = k;
        }
    }
    wvds_call_end(&call);
    return st;
}

wvds_status wvds_random(wvds_conn *conn, void *buf, size_t len)
{
    if (!conn || !wvds_in_ok(buf, len))
        return WVDS_ERR_ARGUMENT;
    wvds_status st = WVDS_SUCCESS;
    for (size_t done = 0; done < len && st == WVDS_SUCCESS;) {
        size_t n = len - done < WVDS_MAX_PAYLOAD ? len - done : WVDS_MAX_PAYLOAD;
        wvds_call call;
        st = wvds_call_begin(conn, &call);
        if (st != WVDS_SUCCESS)
            break;
        wvds_put_u32(&call, (uint32_t)n);
        st = wvds_call_run(&call, WVDS_REQ_RANDOM);
        if (st == WVDS_SUCCESS && call.resp_len != n)
            st = WVDS_ERR_PROTOCOL;
        if (st == WVDS_SUCCESS)
            memcpy((uint8_t *)buf + done, call.resp, n);
        wvds_call_end(&call);
        done += n;
    }
    if (st != WVDS_SUCCESS && len)
        explicit_bzero(buf, len); /* never leave a half-random buffer that might be used as a key */
    return st;
}

wvds_status wvds_service_status(wvds_conn *conn, char *json, size_t cap, size_t *len)
{
    if (!conn || !wvds_out_ok(json, cap, len))
        return WVDS_ERR_ARGUMENT;
    wvds_call call;
    wvds_status st = wvds_call_begin(conn, &call);
    if (st != WVDS_SUCCESS)
        return st;
    st = wvds_call_run(&call, WVDS_REQ_STATUS);
    if (st == WVDS_SUCCESS) { /* UTF-8 JSON object; no NUL inside, so it can be a C string */
        size_t n = call.resp_len;
        if (n == 0 || memchr(call.resp, 0, n) || !wvds_utf8_ok(call.resp, n)) {
            st = WVDS_ERR_PROTOCOL;
        } else if (cap < n + 1) {
            *len = n + 1;
            st = WVDS_ERR_BUFFER_TOO_SMALL;
        } else {
            memcpy(json, call.resp, n);
            json[n] = '\0';
            *len = n;
        }
    }
    wvds_call_end(&call);
    return st;
}
