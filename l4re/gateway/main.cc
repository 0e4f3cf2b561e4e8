/* wvds-gateway: the OEM gateway as a native L4Re task beside the Linux VM (docs/l4re.md, stage 3).
 *
 * It serves the channel into the VM - a virtio console device with one port named "wvds.gateway",
 * which uvmm hands to the VM (device tree node with l4vmm,vdev = "proxy") and the guest sees as
 * /dev/virtio-ports/wvds.gateway - and talks to crypto_service there, which serves that port
 * (config.json "channels"). Each time the service opens the port, the gateway does what
 * examples/oem_gateway.c does over shared memory on Linux (AES-256-GCM, ML-DSA-65, ML-KEM-768, every
 * key deleted at the end), then times round trips, and prints every result on the console.
 *
 * The frames on the port are those of docs/protocol.md, unchanged, back to back (wvds_crypto.h,
 * the delivery's header, gives the constants). Everything is driven by the device's callbacks: one
 * request in flight, the next one sent when the answer to the last is complete.
 *
 * Who may use the channel is decided by ned (l4re/vm/wvds-vm.ned): this task gets the server end
 * (capability "channel"), uvmm the client end, nobody else either. */
#include <l4/l4virtio/server/virtio-console-device>
#include <l4/re/util/br_manager>
#include <l4/re/util/object_registry>
#include <l4/sys/cxx/ipc_epiface>
#include <l4/sys/ipc.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "wvds_crypto.h"

namespace {

typedef std::vector<l4_uint8_t> Bytes;

char const PORT_NAME[] = "wvds.gateway";
unsigned const TIMED = 50; /* round trips per timed operation */

/* The ARM generic timer's virtual counter: Fiasco lets user space read it (kip-time.S). */
l4_uint64_t now_ns()
{
    l4_uint64_t count, freq;
    asm volatile("isb; mrs %0, cntvct_el0" : "=r"(count));
    asm volatile("mrs %0, cntfrq_el0" : "=r"(freq));
    return (l4_uint64_t)((unsigned __int128)count * 1000000000u / freq);
}

void put_u16(Bytes &b, unsigned v) { b.push_back(v & 0xff); b.push_back((v >> 8) & 0xff); }
void put_u32(Bytes &b, l4_uint32_t v) { for (int i = 0; i < 4; i++) b.push_back((v >> (8 * i)) & 0xff); }
void put(Bytes &b, void const *p, size_t n) { b.insert(b.end(), (l4_uint8_t const *)p, (l4_uint8_t const *)p + n); }
l4_uint32_t get_u32(Bytes const &b, size_t at)
{
    return b[at] | b[at + 1] << 8 | b[at + 2] << 16 | (l4_uint32_t)b[at + 3] << 24;
}
unsigned get_u16(Bytes const &b, size_t at) { return b[at] | b[at + 1] << 8; }

/* A request frame: header (magic, version, type, flags, payload length) and payload. */
Bytes frame(unsigned type, Bytes const &payload)
{
    Bytes f = {WVDS_REQUEST_MAGIC, WVDS_PROTOCOL_VERSION, (l4_uint8_t)type, 0};
    put_u32(f, payload.size());
    put(f, payload.data(), payload.size());
    return f;
}

Bytes key_payload(unsigned alg, char const *label)
{
    Bytes p = {(l4_uint8_t)alg};
    put_u32(p, 0); /* the algorithm's default usage */
    p.push_back(strlen(label));
    put(p, label, strlen(label));
    return p;
}

Bytes aes_payload(l4_uint32_t key, char const *aad, Bytes const &data)
{
    Bytes p;
    put_u32(p, key);
    put_u16(p, strlen(aad));
    put(p, aad, strlen(aad));
    put(p, data.data(), data.size());
    return p;
}

Bytes key_id_payload(l4_uint32_t key) { Bytes p; put_u32(p, key); return p; }

/* What examples/oem_gateway.c does, one request per step. */
enum Step {
    Random, Aes_key, Dsa_key, Encrypt, Sign, Verify, Verify_tampered, Decrypt,
    Kem_key, Encaps, Decaps, Encrypt_sent, Decrypt_received,
    Timed_random, Timed_encrypt, Timed_sign,
    Delete_keys, Done
};
char const *const STEP_NAMES[] = {
    "random", "generate AES-256-GCM key", "generate ML-DSA-65 key", "AES-256-GCM encrypt", "ML-DSA-65 sign",
    "ML-DSA-65 verify", "ML-DSA-65 verify (tampered)", "AES-256-GCM decrypt",
    "ML-KEM-768 keygen", "ML-KEM-768 encaps", "ML-KEM-768 decaps", "encrypt with the encapsulated key",
    "decrypt with the decapsulated key",
    "RANDOM 16 B", "AES-256-GCM encrypt 64 B", "ML-DSA-65 sign 64 B",
    "delete keys", "done"
};

class Gateway
{
public:
    /* The request to send now; empty when the run is over. */
    Bytes next_request()
    {
        switch (step) {
        case Random: { Bytes p; put_u32(p, 32); return frame(WVDS_REQ_RANDOM, p); }
        case Aes_key: return frame(WVDS_REQ_KEY_GENERATE, key_payload(WVDS_ALG_AES_256_GCM, "l4re-gateway data"));
        case Dsa_key: return frame(WVDS_REQ_KEY_GENERATE, key_payload(WVDS_ALG_ML_DSA_65, "l4re-gateway signing"));
        case Encrypt: return frame(WVDS_REQ_AES_ENCRYPT, aes_payload(aes_key, AAD, readings));
        case Sign:
        case Verify:
        case Verify_tampered: {
            Bytes p;
            if (step != Sign)
                p.push_back(0); /* key reference: a stored key */
            put_u32(p, dsa_key);
            p.push_back(0); /* no context string */
            if (step != Sign) {
                put_u16(p, signature.size());
                put(p, signature.data(), signature.size());
            }
            size_t at = p.size();
            put(p, sealed.data(), sealed.size());
            if (step == Verify_tampered)
                p[at + sealed.size() / 2] ^= 1;
            return frame(step == Sign ? WVDS_REQ_MLDSA_SIGN : WVDS_REQ_MLDSA_VERIFY, p);
        }
        case Decrypt: return frame(WVDS_REQ_AES_DECRYPT, aes_payload(aes_key, AAD, sealed));
        case Kem_key: return frame(WVDS_REQ_MLKEM_KEYGEN, key_payload(WVDS_ALG_ML_KEM_768, "l4re-gateway kem"));
        case Encaps: { Bytes p = {0}; put_u32(p, kem_key); p.push_back(0); return frame(WVDS_REQ_MLKEM_ENCAPS, p); }
        case Decaps: {
            Bytes p = key_id_payload(kem_key);
            p.push_back(0); /* the secret becomes an AES key in the service */
            put(p, ciphertext.data(), ciphertext.size());
            return frame(WVDS_REQ_MLKEM_DECAPS, p);
        }
        case Encrypt_sent: return frame(WVDS_REQ_AES_ENCRYPT, aes_payload(sender_key, "", message()));
        case Decrypt_received: return frame(WVDS_REQ_AES_DECRYPT, aes_payload(receiver_key, "", sealed));
        case Timed_random: { Bytes p; put_u32(p, 16); return frame(WVDS_REQ_RANDOM, p); }
        case Timed_encrypt: return frame(WVDS_REQ_AES_ENCRYPT, aes_payload(aes_key, "", Bytes(64, 0x5a)));
        case Timed_sign: {
            Bytes p = key_id_payload(dsa_key);
            p.push_back(0);
            put(p, Bytes(64, 0x5a).data(), 64);
            return frame(WVDS_REQ_MLDSA_SIGN, p);
        }
        case Delete_keys: return frame(WVDS_REQ_KEY_DELETE, key_id_payload(created.back()));
        case Done: break;
        }
        return Bytes();
    }

    /* The answer to next_request(): false ends the run (the failure is printed). */
    bool answer(unsigned status, Bytes const &p, l4_uint64_t ns)
    {
        unsigned expected = step == Verify_tampered ? WVDS_SIGNATURE_INVALID : WVDS_SUCCESS;
        if (status != expected) {
            printf("wvds-gateway: FAILED: %s: status 0x%02x, expected 0x%02x\n", STEP_NAMES[step], status, expected);
            return false;
        }
        if (step >= Timed_random && step <= Timed_sign) {
            samples.push_back(ns);
            if (samples.size() < TIMED)
                return true;
            report_timing();
            step = Step(step + 1);
            return true;
        }
        if (step == Delete_keys) {
            created.pop_back();
            if (!created.empty())
                return true;
        }
        else if (!check(p))
            return false;
        else
            printf("wvds-gateway: %s: ok (%u bytes back, %llu us)\n", STEP_NAMES[step], (unsigned)p.size(),
                   (unsigned long long)(ns / 1000));
        step = Step(step + 1);
        if (step == Done)
            printf("wvds-gateway: all steps succeeded over the L4Re channel (%u requests)\n", requests + 1);
        return true;
    }

    void reset() { *this = Gateway(); }
    bool running() const { return step != Done; }
    char const *step_name() const { return STEP_NAMES[step]; }
    unsigned requests = 0;

private:
    static constexpr char const *AAD = "gateway-17/batch-0001";

    Bytes message() const
    {
        char const m[] = "ML-KEM-768 to AES-256-GCM over the L4Re channel";
        return Bytes(m, m + sizeof m - 1);
    }

    bool fail(char const *why)
    {
        printf("wvds-gateway: FAILED: %s: %s\n", STEP_NAMES[step], why);
        return false;
    }

    /* The response's content: sizes, and the round trips give back what went in. */
    bool check(Bytes const &p)
    {
        switch (step) {
        case Random: return p.size() == 32 || fail("not 32 bytes");
        case Aes_key:
        case Dsa_key:
        case Kem_key: {
            if (p.size() < 6 || get_u16(p, 4) != p.size() - 6)
                return fail("malformed key response");
            unsigned want = step == Aes_key ? 0 : step == Dsa_key ? WVDS_MLDSA65_PUBLIC_KEY_SIZE
                                                                  : WVDS_MLKEM768_PUBLIC_KEY_SIZE;
            if (get_u16(p, 4) != want)
                return fail("public key of the wrong size");
            l4_uint32_t id = get_u32(p, 0);
            (step == Aes_key ? aes_key : step == Dsa_key ? dsa_key : kem_key) = id;
            created.push_back(id);
            return true;
        }
        case Encrypt:
            sealed = p;
            return p.size() == readings.size() + WVDS_GCM_NONCE_SIZE + WVDS_GCM_TAG_SIZE || fail("sealed size");
        case Sign:
            signature = p;
            return p.size() == WVDS_MLDSA65_SIGNATURE_SIZE || fail("signature size");
        case Verify:
        case Verify_tampered: return p.empty() || fail("verify answered data");
        case Decrypt: return p == readings || fail("decrypted text differs from the readings");
        case Encaps: {
            if (p.size() < 7 || get_u32(p, 0) == 0)
                return fail("malformed encaps response");
            unsigned ct_len = get_u16(p, 4);
            if (ct_len != 1088 || p.size() != 6 + ct_len + 1 || p[6 + ct_len] != 0)
                return fail("ciphertext of the wrong size, or a secret returned");
            sender_key = get_u32(p, 0);
            created.push_back(sender_key);
            ciphertext.assign(p.begin() + 6, p.begin() + 6 + ct_len);
            return true;
        }
        case Decaps:
            if (p.size() != 5 || get_u32(p, 0) == 0 || p[4] != 0)
                return fail("malformed decaps response");
            receiver_key = get_u32(p, 0);
            created.push_back(receiver_key);
            return true;
        case Encrypt_sent:
            sealed = p;
            return p.size() == message().size() + WVDS_GCM_NONCE_SIZE + WVDS_GCM_TAG_SIZE || fail("sealed size");
        case Decrypt_received: return p == message() || fail("the two ends of ML-KEM derived different keys");
        default: return true;
        }
    }

    void report_timing()
    {
        std::sort(samples.begin(), samples.end());
        printf("wvds-gateway: round trip %s: n=%u min=%llu p50=%llu p90=%llu max=%llu us\n", STEP_NAMES[step],
               (unsigned)samples.size(), (unsigned long long)samples.front() / 1000,
               (unsigned long long)samples[samples.size() / 2] / 1000,
               (unsigned long long)samples[samples.size() * 9 / 10] / 1000, (unsigned long long)samples.back() / 1000);
        samples.clear();
    }

    static Bytes sensor_readings()
    {
        Bytes r;
        char line[64];
        for (int t = 0; t < 10; t++) {
            int n = snprintf(line, sizeof line, "t=%d temp=%d.%02dC\n", t, 21 + t / 4, (t % 4) * 25);
            put(r, line, n);
        }
        return r;
    }

    Step step = Random;
    Bytes readings = sensor_readings(), sealed, signature, ciphertext;
    l4_uint32_t aes_key = 0, dsa_key = 0, kem_key = 0, sender_key = 0, receiver_key = 0;
    std::vector<l4_uint32_t> created; /* deleted at the end, newest first */
    std::vector<l4_uint64_t> samples;
};

L4Re::Util::Registry_server<L4Re::Util::Br_manager_hooks> server;

class Channel : public L4virtio::Svr::Console::Device, public L4::Epiface_t<Channel, L4virtio::Device>
{
public:
    explicit Channel(L4Re::Util::Object_registry *registry)
    : L4virtio::Svr::Console::Device(0x100, 1) /* multiport with one port: it can carry a name */
    {
        init_mem_info(4);
        L4Re::chkcap(registry->register_irq_obj(irq_iface()), "virtio notification IRQ");
    }

    L4::Ipc_svr::Server_iface *server_iface() const override { return L4::Epiface::server_iface(); }

    void process_port_ready(l4_uint32_t id, l4_uint16_t value) override
    {
        Device::process_port_ready(id, value);
        if (value && port_name(id, PORT_NAME) < 0)
            printf("wvds-gateway: could not name port %u\n", id);
    }

    void process_port_open(l4_uint32_t id, l4_uint16_t value) override
    {
        printf("wvds-gateway: port %u %s by the VM\n", id, value ? "opened" : "closed");
        if (!value) {
            if (gateway.running() && active)
                printf("wvds-gateway: run abandoned at step '%s'\n", gateway.step_name());
            active = false;
            return;
        }
        gateway.reset();
        inbox.clear();
        active = true;
        send_next();
    }

    void rx_data_available(unsigned) override
    {
        char buf[4096];
        unsigned n;
        while ((n = port_read(buf, sizeof buf)) > 0)
            inbox.insert(inbox.end(), buf, buf + n);
        if (!active)
            return inbox.clear();
        while (active && inbox.size() >= WVDS_HEADER_SIZE) {
            if (inbox[0] != WVDS_RESPONSE_MAGIC || inbox[1] != WVDS_PROTOCOL_VERSION) {
                printf("wvds-gateway: FAILED: not a response header from the VM\n");
                active = false;
                return;
            }
            size_t len = get_u32(inbox, 4);
            if (len > WVDS_MAX_RESPONSE_PAYLOAD) { /* else we would wait for (and keep) whatever arrives */
                printf("wvds-gateway: FAILED: a response of %zu bytes from the VM\n", len);
                active = false;
                return;
            }
            if (inbox.size() < WVDS_HEADER_SIZE + len)
                return; /* the rest arrives with a later notification */
            Bytes payload(inbox.begin() + WVDS_HEADER_SIZE, inbox.begin() + WVDS_HEADER_SIZE + len);
            unsigned status = inbox[2];
            inbox.erase(inbox.begin(), inbox.begin() + WVDS_HEADER_SIZE + len);
            if (status == WVDS_RATE_LIMITED) { /* the service's rate limit holds for us too: wait, ask again */
                printf("wvds-gateway: rate limited at step '%s': retrying in 100 ms\n", gateway.step_name());
                l4_ipc_sleep_ms(100);
                sent = 0;
                sent_at = now_ns();
                flush();
                continue;
            }
            if (!gateway.answer(status, payload, now_ns() - sent_at)) {
                active = false;
                return;
            }
            gateway.requests++;
            send_next();
        }
    }

    void tx_space_available(unsigned) override { flush(); }

private:
    void send_next()
    {
        outbox = gateway.next_request();
        sent = 0;
        if (outbox.empty()) {
            active = false;
            return;
        }
        sent_at = now_ns();
        flush();
    }

    /* As much of the request as the VM has buffers for; the rest on tx_space_available(). */
    void flush()
    {
        if (sent < outbox.size())
            sent += port_write((char const *)outbox.data() + sent, outbox.size() - sent);
    }

    Gateway gateway;
    Bytes inbox, outbox;
    size_t sent = 0;
    l4_uint64_t sent_at = 0;
    bool active = false;
};

} // namespace

int main()
{
    static Channel channel(server.registry());
    L4Re::chkcap(server.registry()->register_obj(&channel, "channel"), "serve capability 'channel'");
    printf("wvds-gateway: serving the channel\n");
    server.loop();
}
