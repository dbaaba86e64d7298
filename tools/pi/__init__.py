"""An emulated Raspberry Pi (arm64 Debian under QEMU) for the edge node."""
