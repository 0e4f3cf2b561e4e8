/* service.c — the provider's connections to crypto_service.
 *
 * One connection per socket path, opened on first use and shared by all keys and threads (a
 * wvds_conn is thread-safe and has several slots). When the service restarts, calls on the old
 * connection return WVDS_ERR_DISCONNECTED: the connection is retired and the call retried once
 * on a new one. Retired connections are closed only at provider teardown, so a thread still
 * using one never sees it freed. After fork() the child opens its own connection (the library's
 * rule); the parent's copy is retired unused.
 */
#define _POSIX_C_SOURCE 200809L /* getpid */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "provider.h"

struct wvdsp_service {
    wvdsp_service *next;
    char socket[WVDS_KEYREF_MAX_SOCKET + 1]; /* "" = the library's default */
    wvds_conn *conn;
    pid_t pid;   /* process that opened conn */
    int retired; /* the service dropped it, or it was inherited over fork() */
};

/* The live connection for socket, opened if needed. Called with pc->lock held. */
static wvds_status current(wvdsp_provctx *pc, const char *socket, wvds_conn **out)
{
    wvdsp_service *s;
    wvds_options opts = {0};
    wvds_status st;

    for (s = pc->services; s; s = s->next)
        if (!s->retired && strcmp(s->socket, socket) == 0) {
            if (s->pid == getpid()) {
                *out = s->conn;
                return WVDS_SUCCESS;
            }
            s->retired = 1; /* inherited over fork(): the parent's session, not ours */
        }
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return WVDS_ERR_SYSTEM;
    opts.spin_us = 20; /* signing takes milliseconds: do not burn a core waiting */
    st = wvds_connect_ex(socket[0] ? socket : NULL, &opts, &s->conn);
    if (st != WVDS_SUCCESS) {
        free(s);
        return st;
    }
    memcpy(s->socket, socket, strlen(socket) + 1);
    s->pid = getpid();
    s->next = pc->services;
    pc->services = s;
    *out = s->conn;
    return WVDS_SUCCESS;
}

static void retire(wvdsp_provctx *pc, wvds_conn *conn)
{
    for (wvdsp_service *s = pc->services; s; s = s->next)
        if (s->conn == conn)
            s->retired = 1; /* closed at teardown: another thread may still be using it */
}

wvds_status wvdsp_service_run(wvdsp_provctx *pc, const char *socket, wvdsp_op op, void *arg)
{
    wvds_status st = WVDS_ERR_CONNECT;

    if (strlen(socket) > WVDS_KEYREF_MAX_SOCKET)
        return WVDS_ERR_ARGUMENT;
    for (int attempt = 0; attempt < 2; attempt++) {
        wvds_conn *conn = NULL;

        pthread_mutex_lock(&pc->lock);
        st = current(pc, socket, &conn);
        pthread_mutex_unlock(&pc->lock);
        if (st != WVDS_SUCCESS)
            return st;
        st = op(conn, arg);
        if (st != WVDS_ERR_DISCONNECTED)
            return st;
        pthread_mutex_lock(&pc->lock);
        retire(pc, conn);
        pthread_mutex_unlock(&pc->lock);
    }
    return st;
}

void wvdsp_service_close_all(wvdsp_provctx *pc)
{
    wvdsp_service *s = pc->services, *next;

    for (; s; s = next) {
        next = s->next;
        if (s->pid == getpid())
            wvds_close(s->conn);
        free(s);
    }
    pc->services = NULL;
}
