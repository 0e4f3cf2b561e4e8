-- vi:ft=lua
-- io's view of the hardware the Linux VM may use (docs/l4re.md), on QEMU's arm64 `virt` machine:
-- - the real-time clock, a PL031 (without it the guest's clock starts in the past, and no
--   certificate is valid yet);
-- - virtio-mmio transports 28-31. QEMU gives the first -device on its command line the transport
--   with the highest address, so the smoke test's four devices (root disk, payload disk, network,
--   results port) sit in 31, 30, 29, 28. Each is 0x200 bytes and one edge-triggered SPI (16 + n).
--   They do DMA into guest memory: with no IOMMU, uvmm then maps the guest's RAM 1:1 to
--   host-physical addresses.

local Res = Io.Res

local function transport(n)
  local base = 0x0a000000 + n * 0x200
  return Io.Hw.Device(function()
    compatible = { "virtio,mmio" }
    Property.flags = Io.Hw_device_DF_dma_supported
    Resource.reg0 = Res.mmio(base, base + 0x1ff)
    Resource.irq0 = Res.irq(32 + 16 + n, Io.Resource.Irq_type_raising_edge)
  end)
end

Io.hw_add_devices(function()
  rtc = Io.Hw.Device(function()
    compatible = { "arm,pl031" }
    Resource.reg0 = Res.mmio(0x09010000, 0x09010fff)
    Resource.irq0 = Res.irq(32 + 2, Io.Resource.Irq_type_level_high)
  end)
  virtio_mmio28 = transport(28)
  virtio_mmio29 = transport(29)
  virtio_mmio30 = transport(30)
  virtio_mmio31 = transport(31)
end)
