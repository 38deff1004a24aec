#!/bin/sh
# Install the trtexec stand-in into a root filesystem where JetPack puts trtexec
# (/usr/src/tensorrt/bin/trtexec), with its configuration folder /etc/trtexec-sim.
#
#   install.sh ROOTFS
#
# Called by the lab (tests/lab/lab up) for sim-tx2, whose copies share the root filesystem. Idempotent:
# the configuration files (version, board) are left as they are; without them the stand-in is TensorRT
# 8.2.1 on a TX2. Needs root (files owned by root, as on a board). See README.md.
set -eu

if [ "$#" -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 ROOTFS" >&2
    exit 2
fi
ROOTFS=$1
SRC=$(cd "$(dirname "$0")" && pwd)

install -D -m 0755 "$SRC/trtexec" "$ROOTFS/usr/src/tensorrt/bin/trtexec"
install -d -m 0755 "$ROOTFS/etc/trtexec-sim"
