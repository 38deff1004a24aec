#!/bin/sh
# What every result records about the board, in one round trip (edgeprof/board.py probe()): KEY=VALUE lines.
# A constant script: nothing from the user is ever pasted into it.
# $1: the mktemp template of the run's private work folder, made here (first line) to save a round trip.
# $2: "sudo" where the run will use sudo: how it gets root there (second line; edgeprof/transport/sudo.py),
# asked here for the same reason. `sudo -n true` is run only for a login that is not root (sudo reports a user
# it refuses to the board's admin).
echo "workdir=$(mktemp -d "$1")"
if [ "${2-}" = sudo ]; then
  if [ "$(id -u)" = 0 ]; then echo "sudo=root"
  elif sudo -n true </dev/null >/dev/null 2>&1; then echo "sudo=passwordless"
  elif command -v sudo >/dev/null 2>&1; then echo "sudo=asks"
  else echo "sudo=missing"; fi
fi
echo "hostname=$(hostname)"
echo "arch=$(uname -m)"
echo "kernel=$(uname -r)"
# shellcheck disable=SC1091 # the board's own file, read for PRETTY_NAME
[ -r /etc/os-release ] && . /etc/os-release && echo "os=$PRETTY_NAME"
[ -r /etc/nv_tegra_release ] && echo "l4t=$(head -n 1 /etc/nv_tegra_release)"
[ -r /proc/device-tree/model ] && echo "board_model=$(tr -d '\0' < /proc/device-tree/model)"
echo "cpus=$(nproc 2>/dev/null)"
echo "mem_total_kb=$(awk '/^MemTotal/ {print $2}' /proc/meminfo 2>/dev/null)"
echo "python3=$(python3 -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)"
if command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)"
  echo "gpu_count=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | grep -c .)"
elif [ -e /dev/nvhost-ctrl-gpu ]; then echo "gpu=integrated (Tegra)"; echo "gpu_count=1"; fi
exit 0
