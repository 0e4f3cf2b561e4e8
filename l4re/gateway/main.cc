/* wvds-gateway: the OEM gateway as a native L4Re task beside the Linux VM (docs/l4re.md, stage 3).
 *
 * What it does so far: it serves the channel into the VM - a virtio console device with one port
 * named "wvds.gateway", which uvmm hands to the VM (device tree node with l4vmm,vdev = "proxy") and the
 * guest sees as /dev/virtio-ports/wvds.gateway - greets whoever opens the port, and logs what it
 * receives. It does not send crypto requests yet: that needs crypto_service to serve the port.
 *
 * Who may use the channel is decided by ned (l4re/vm/wvds-vm.ned): this task gets the server end
 * (capability "channel"), uvmm the client end, nobody else either. */
#include <l4/l4virtio/server/virtio-console-device>
#include <l4/re/util/br_manager>
#include <l4/re/util/object_registry>
#include <l4/sys/cxx/ipc_epiface>

#include <cstdio>

namespace {

char const PORT_NAME[] = "wvds.gateway";
char const GREETING[] = "wvds-gateway: L4Re channel ready\n";

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
        if (value && port_write(GREETING, sizeof GREETING - 1) != sizeof GREETING - 1)
            printf("wvds-gateway: greeting not sent (no buffer from the VM)\n");
    }

    void rx_data_available(unsigned) override
    {
        char buf[256];
        unsigned n;
        while ((n = port_read(buf, sizeof buf - 1)) > 0) {
            buf[n] = 0;
            printf("wvds-gateway: %u bytes from the VM: %s", n, buf);
        }
    }

    void tx_space_available(unsigned) override {}
};

} // namespace

int main()
{
    static Channel channel(server.registry());
    L4Re::chkcap(server.registry()->register_obj(&channel, "channel"), "serve capability 'channel'");
    printf("wvds-gateway: serving the channel\n");
    server.loop();
}
