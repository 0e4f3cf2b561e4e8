/* Status names and the library version. The switch has no default case on purpose:
 * with -Wall -Werror a status added to the protocol (and so to the generated enum)
 * fails the build until it has a name here. */
#include "internal.h"

static const char *name_of(wvds_status s)
{
    switch (s) {
#define NAME(x) \
    case x:     \
        return #x;
        NAME(WVDS_SUCCESS)
        NAME(WVDS_INVALID_HEADER)
        NAME(WVDS_INVALID_TYPE)
        NAME(WVDS_INVALID_PAYLOAD)
        NAME(WVDS_KEY_NOT_FOUND)
        NAME(WVDS_CRYPTO_ERROR)
        NAME(WVDS_DECRYPTION_FAILED)
        NAME(WVDS_RATE_LIMITED)
        NAME(WVDS_NONCE_REUSE)
        NAME(WVDS_PAYLOAD_TOO_LARGE)
        NAME(WVDS_PERMISSION_DENIED)
        NAME(WVDS_SIGNATURE_INVALID)
        NAME(WVDS_KEY_EXHAUSTED)
        NAME(WVDS_UNSUPPORTED_ALGORITHM)
        NAME(WVDS_STORAGE_ERROR)
        NAME(WVDS_QUOTA_EXCEEDED)
        NAME(WVDS_SHUTTING_DOWN)
        NAME(WVDS_INTERNAL_ERROR)
        NAME(WVDS_ERR_CONNECT)
        NAME(WVDS_ERR_REFUSED)
        NAME(WVDS_ERR_TIMEOUT)
        NAME(WVDS_ERR_PROTOCOL)
        NAME(WVDS_ERR_BUFFER_TOO_SMALL)
        NAME(WVDS_ERR_ARGUMENT)
        NAME(WVDS_ERR_DISCONNECTED)
        NAME(WVDS_ERR_SYSTEM)
#undef NAME
    }
    return NULL;
}

const char *wvds_status_name(wvds_status status)
{
    const char *n = name_of(status);
    return n ? n : "WVDS_UNKNOWN_STATUS";
}

bool wvds_is_wire_status(uint8_t code)
{
    return name_of((wvds_status)code) != NULL;
}

const char *wvds_library_version(void)
{
    return WVDS_PRODUCT_VERSION;
}
