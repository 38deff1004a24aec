#!/bin/sh
# Install the simulated Jetson TX2 tools into a root filesystem, at the paths JetPack 4.6 uses on
# a TX2, and give the board a freshly flashed state (mode 3, nothing pinned, no tegrastats left).
#
#   install.sh ROOTFS
#
# Called by the lab (tests/lab/lab) for the sim-tx2 board. Needs root (files owned by root, as on
# a board). The tools need python3 in the root filesystem. See README.md.
set -eu

if [ "$#" -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 ROOTFS" >&2
    exit 2
fi
ROOTFS=$1
SRC=$(cd "$(dirname "$0")" && pwd)
STATE=$ROOTFS/var/lib/jetson-sim

install -D -m 0755 "$SRC/nvpmodel" "$ROOTFS/usr/sbin/nvpmodel"
install -D -m 0755 "$SRC/jetson_clocks" "$ROOTFS/usr/bin/jetson_clocks"
install -D -m 0755 "$SRC/tegrastats" "$ROOTFS/usr/bin/tegrastats"
install -D -m 0644 "$SRC/nvpmodel.conf" "$ROOTFS/etc/nvpmodel.conf"

# The state is written by root only (nvpmodel -m, jetson_clocks) and read by everyone.
install -d -m 0755 "$STATE"
rm -f "$STATE/state.json" "$STATE/state.json.tmp" "$STATE/gpu_clock_override" "$STATE/reboot_modes" \
    "$STATE/thermal_ramp" "$STATE/restore_waits"
# Every tegrastats instance, root or not, registers its pid here for `tegrastats --stop`: a
# sticky world-writable folder, as /tmp.
rm -rf "$STATE/tegrastats.d"
install -d -m 1777 "$STATE/tegrastats.d"

# The SoC thermal zones' types and trip points (nvpmodel's THERMAL_ZONES), which the lab mounts at the
# board's /sys/class/thermal (the host's sysfs, bound into the chroot, has none).
ZONES=$ROOTFS/usr/share/jetson-sim/thermal
rm -rf "$ZONES"
python3 -c '
import importlib.machinery, importlib.util, sys
loader = importlib.machinery.SourceFileLoader("jetson_sim_nvpmodel", sys.argv[1])
board = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
loader.exec_module(board)
board.write_thermal_zones(sys.argv[2])' "$SRC/nvpmodel" "$ZONES"
