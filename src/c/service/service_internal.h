/* What the service library's files share beyond the exported API (wvds_srv.h). */
#ifndef WVDS_SERVICE_INTERNAL_H
#define WVDS_SERVICE_INTERNAL_H

#include "slots_service.h"
#include "wvds_srv.h"

/* The fast path's wvds_serve_hooks.answer: answers and publishes the BUSY request in `slot`
 * (req_len read once) if it can: 1; else 0 and the slot is untouched. */
int wvds_srv_fast_answer(wvds_srv_fast *f, void *shm, unsigned slot, uint32_t req_len);

#endif
