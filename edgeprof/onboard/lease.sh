#!/bin/sh
# edgeprof's board lease, run on the board as `sh -c "<this file's text>" lease.sh ACTION LEASE_DIR ARGS...`
# (edgeprof/power/lease.py sends the text on every call; nothing of it is stored on the board).
#
# It runs as root on boards where edgeprof changes state through sudo (LEASE_DIR=/var/lib/edgeprof/lease), and
# as the login user where it changes nothing (LEASE_DIR=/var/tmp/edgeprof-UID/lease). Either way the folder
# and every file in it must belong to whoever runs this and be writable by nobody else, or it refuses
# (exit 5) and says what it found. Nothing in the folder is ever executed: `restore` is data, one
# "KEY VALUE" line per step, each value checked here before it becomes a fixed command.
#
# Exit status: 0 done (acquire: taken), 3 busy (or, for renew/release/take-over, not the named owner's),
# 4 stale (expired, no guard: the caller restores it), 5 unsafe.
set -u
umask 022
action=$1 d=$2
shift 2
base=${d%/*}
me=$(id -u)

unsafe() {
  echo "unsafe $*"
  exit 5
}

# check_path PATH KIND: PATH (when present) is a KIND (d or f), not a symbolic link, owned by the caller and
# not writable by group or others.
check_path() {
  if [ -L "$1" ]; then unsafe "$1 is a symbolic link"; fi
  [ -e "$1" ] || return 0
  [ "-$2" = -d ] && { [ -d "$1" ] || unsafe "$1 is not a folder"; }
  [ "-$2" = -f ] && { [ -f "$1" ] || unsafe "$1 is not a regular file"; }
  set -- "$1" "$(stat -c %u "$1" 2>/dev/null)" "$(stat -c %a "$1" 2>/dev/null)"
  # Gone since the -e test (the holder released its lease meanwhile): nothing there to trust or refuse.
  [ -n "$2" ] || return 0
  [ "$2" = "$me" ] || unsafe "$1 belongs to uid $2, not to uid $me"
  [ $((0$3 & 022)) -eq 0 ] || unsafe "$1 is writable by group or others (mode $3)"
}

# The lease folder and everything in it (its files are all regular files written by the caller).
check_lease() {
  check_path "$base" d
  check_path "$d" d
  [ -d "$d" ] || return 0
  for f in "$d"/* "$d"/.[!.]*; do
    if [ -e "$f" ] || [ -L "$f" ]; then check_path "$f" f; fi
  done
}

# Make the base folder if needed (mkdir never follows a planted link; a folder someone else made first is
# refused by check_path).
prepare() {
  if [ ! -e "$base" ] && [ ! -L "$base" ]; then
    if [ "$me" = 0 ]; then mkdir -m 0755 "$base" 2>/dev/null; else mkdir -m 0700 "$base" 2>/dev/null; fi
  fi
  check_path "$base" d
  [ -d "$base" ] || { echo "error cannot create $base"; exit 1; }
}

# write NAME TEXT: NAME appears whole (written aside, then renamed): a reader never sees it half-written.
write() {
  rm -f "$d/$1.new" && printf '%s\n' "$2" > "$d/$1.new" && mv -f "$d/$1.new" "$d/$1"
}

ours() {
  [ "$(cat "$d/owner" 2>/dev/null)" = "$1" ]
}

# Undo what the lease's `restore` lines say, in order. Unknown keys and bad values are reported, never run.
restore() {
  check_lease
  [ -f "$d/restore" ] || return 0
  status=0
  while read -r key value; do
    case $key in
      stop_work)
        case $value in
          /tmp/edgeprof.*[!A-Za-z0-9]* | /tmp/edgeprof.) echo "ignored: stop_work $value" >&2; status=1 ;;
          /tmp/edgeprof.*) pkill -TERM -f -- "$value/"; rm -rf -- "$value" ;;
          *) echo "ignored: stop_work $value" >&2; status=1 ;;
        esac ;;
      jetson_clocks)
        # `jetson_clocks --restore` writes CPU online flags before frequencies, so a CPU the original mode
        # keeps offline would go offline first and keep its pinned minimum: frequencies alone first, while
        # every CPU is online, then the whole file.
        if [ -f "$d/clocks.conf" ]; then
          grep -v "/online:" "$d/clocks.conf" > "$d/clocks-frequencies.conf" || status=1
          jetson_clocks --restore "$d/clocks-frequencies.conf" || status=1
          jetson_clocks --restore "$d/clocks.conf" || status=1
        else
          echo "no stored clocks to restore" >&2; status=1
        fi ;;
      nvpmodel_first | nvpmodel)
        case $value in
          '' | *[!0-9]*) echo "ignored: $key $value" >&2; status=1 ;;
          *) nvpmodel -m "$value" || status=1 ;;
        esac ;;
      nvidia_smi_rgc) nvidia-smi -rgc || status=1 ;;
      '') ;;
      *) echo "ignored: $key" >&2; status=1 ;;
    esac
  done < "$d/restore"
  return $status
}

# Before the new layout, the lease lived in a world-writable /var/tmp/edgeprof: anything found there is
# reported and left alone (never run, never removed: an older edgeprof's guard may still use it).
legacy() {
  if [ -e /var/tmp/edgeprof/lease ] || [ -L /var/tmp/edgeprof/lease ]; then
    echo "legacy /var/tmp/edgeprof/lease uid $(stat -c %u /var/tmp/edgeprof/lease)"
  fi
}

case $action in
  acquire)  # acquire LEASE_S OWNER [RESTORE [GUARD_SCRIPT]]: once taken, record RESTORE and start the guard
    # (sh -c gives a script no way to read its own text: the caller passes it again as GUARD_SCRIPT)
    lease_s=$1 owner=$2 first_restore=${3-} guard_script=${4-}
    case $lease_s in '' | *[!0-9]*) echo "error lease seconds must be digits: $lease_s"; exit 1 ;; esac
    prepare
    legacy
    for r in "$base"/interrupted.*; do
      [ -d "$r" ] || continue
      check_path "$r" d
      echo "interrupted $(cat "$r/restored_at" 2>/dev/null) $(cat "$r/owner" 2>/dev/null)"
      rm -rf -- "$r"
    done
    if mkdir -m 0755 "$d" 2>/dev/null; then
      if ! { write owner "$owner" && write expires $(($(date +%s) + lease_s)) \
          && { [ -z "$first_restore" ] || write restore "$first_restore"; }; }; then
        echo "error cannot write in $d"
        exit 1
      fi
      if [ -n "$guard_script" ]; then
        setsid sh -c "$guard_script" edgeprof-guard guard "$d" "$owner" </dev/null >/dev/null 2>&1 &
      fi
      echo acquired
      exit 0
    fi
    check_lease
    now=$(date +%s)
    expires=$(cat "$d/expires" 2>/dev/null)
    guard=$(cat "$d/guard.pid" 2>/dev/null)
    case $expires in *[!0-9]*) expires=0 ;; esac
    case $guard in *[!0-9]*) guard= ;; esac
    # A lease without `expires` is being taken this very moment (its taker writes it right after mkdir):
    # busy, not stale, unless it has been like that for a minute.
    young=$((now - $(stat -c %Y "$d" 2>/dev/null || echo "$now") < 60))
    if { [ -z "$expires" ] && [ "$young" = 1 ]; } || [ "$now" -le "${expires:-0}" ] \
      || { [ -n "$guard" ] && [ -d "/proc/$guard" ]; }; then
      echo "busy $(cat "$d/owner" 2>/dev/null || echo '(being taken)')"
      exit 3
    fi
    echo "stale $(cat "$d/owner" 2>/dev/null)"
    exit 4 ;;
  record)  # record TEXT [store-clocks]: the restore steps, replacing earlier ones; with store-clocks, first
    # `jetson_clocks --store` into the lease (where only the caller can write) for the jetson_clocks step
    check_lease
    if [ "${2:-}" = store-clocks ]; then jetson_clocks --store "$d/clocks.conf" || exit 1; fi
    write restore "$1" ;;
  renew)  # renew LEASE_S OWNER: only this run's own lease
    case $1 in '' | *[!0-9]*) echo "error lease seconds must be digits: $1"; exit 1 ;; esac
    check_lease
    ours "$2" || { echo "lost $(cat "$d/owner" 2>/dev/null)"; exit 3; }
    write expires $(($(date +%s) + $1)) ;;
  guard)  # guard OWNER: detached; once `expires` passes, restore and leave a record
    owner=$1
    check_lease
    echo $$ > "$d/guard.pid.new" && mv -f "$d/guard.pid.new" "$d/guard.pid"
    while ours "$owner"; do
      now=$(date +%s)
      expires=$(cat "$d/expires" 2>/dev/null || echo 0)
      case $expires in '' | *[!0-9]*) expires=0 ;; esac
      if [ "$now" -gt "$expires" ]; then
        restore > "$d/restore.log" 2>&1
        date +%s > "$d/restored_at"
        mv -- "$d" "$base/interrupted.$now.$$"
        exit 0
      fi
      sleep 1
    done ;;
  restore-stale)  # restore a lease whose run and guard are gone (a reboot), then leave a record
    check_lease
    restore > "$d/restore.log" 2>&1
    date +%s > "$d/restored_at"
    mv -- "$d" "$base/interrupted.$(date +%s).stale" ;;
  take-over)  # take-over OWNER: the host saw OWNER's process die; restore now instead of at expiry
    check_lease
    ours "$1" || { echo "lost $(cat "$d/owner" 2>/dev/null)"; exit 3; }
    # Its guard would restore again at expiry, or find the folder gone mid-way: stop it first (only if it
    # is edgeprof's guard: a pid file can outlive its process and the pid be reused).
    guard=$(cat "$d/guard.pid" 2>/dev/null)
    case $guard in
      '' | *[!0-9]*) ;;
      *) if grep -q edgeprof-guard "/proc/$guard/cmdline" 2>/dev/null; then kill "$guard"; fi ;;
    esac
    restore > "$d/restore.log" 2>&1
    date +%s > "$d/restored_at"
    mv -- "$d" "$base/interrupted.$(date +%s).takeover" ;;
  release)  # release OWNER: restore now and free the board, only if the lease is this run's
    ours "$1" || { echo "lost $(cat "$d/owner" 2>/dev/null)"; exit 3; }
    restore
    status=$?
    rm -rf -- "$d"
    exit $status ;;
  *)
    echo "error unknown action $action"
    exit 1 ;;
esac
