#!/usr/bin/env bash
# Prove the Dockerfile where no Docker engine runs: build it with buildah on a local Debian base,
# then run replicas from the image against a redis-server of our own.
#
#   sudo deploy/build-image.sh          # root: buildah with chroot isolation, debootstrap, unshare
#
# 1. The base: Debian bookworm's python3 (python3, python3-venv, python3-pip) made with debootstrap
#    from the mirror apt uses here, imported into buildah (FROM scratch + ADD of the root tarball).
#    It stands in for python:3.11-slim, which cannot be pulled here. It is cached, with buildah's
#    storage and its layer cache, under $BUILD_IMAGE_CACHE (default /var/tmp/scheduler-base).
# 2. The image: `buildah build --build-arg BASE=<that base>` of the Dockerfile, the same file a
#    `docker build` takes; pip inside it uses this machine's package index and CA bundle, passed as
#    a build argument and a build secret, neither of which reaches the final image (checked).
# 3. The image's configuration is checked: exec-form ENTRYPOINT and CMD, a non-root USER, the
#    HEALTHCHECK, PYTHONUNBUFFERED, no pip settings.
# 4. A derived image with a table of one every-second schedule (deploy/table.Dockerfile).
# 5. Replica A: `buildah run --isolation chroot` of the image's ENTRYPOINT + CMD, host network. It
#    must log that it took the lease, put firings on {scheduler}:queue:default, and exit 0 within
#    10 s of SIGTERM.
# 6. Replica B, as ECS runs it: PID 1 of its own PID namespace, the image's root file system
#    read-only, the image's user; the same three checks.
#
# Prints one summary line on success; exits non-zero and shows the logs' tails on failure (the logs
# stay in a temporary folder then, and with BUILD_IMAGE_KEEP_LOGS=1 after a success too).
set -euo pipefail
export LC_ALL=C   # a decimal point in $EPOCHREALTIME, whatever the caller's locale

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${BUILD_IMAGE_CACHE:-/var/tmp/scheduler-base}
image=localhost/scheduler:proof
table_image=localhost/scheduler-proof-table:latest
base_image=localhost/scheduler-base:bookworm
stream='{scheduler}:queue:default'
stop_within=10   # seconds from SIGTERM to exit 0

say() { printf 'build-image: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (buildah's chroot isolation, debootstrap and unshare need it)"
for tool in buildah debootstrap redis-server redis-cli unshare python3 flock; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done

mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9   # one proof at a time per cache

work=$(mktemp -d "${TMPDIR:-/tmp}/scheduler-proof.XXXXXX")
containers=()
redis_pid="" runner_pid=""
keep_work=1
# A process and everything under it (a runner, the scheduler inside it).
kill_tree() {
    local child
    for child in $(pgrep -P "$1"); do kill_tree "$child"; done
    kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
    local status=$?
    for pid in $runner_pid $redis_pid; do
        kill_tree "$pid"
    done
    for ctr in "${containers[@]}"; do
        bh rm "$ctr" >/dev/null 2>&1 || true
    done
    if [ "$status" = 0 ] && [ "$keep_work" = 0 ]; then
        rm -rf "$work"
    else
        say "logs kept in $work"
    fi
}
trap cleanup EXIT

# -- buildah, on a storage of its own under the cache --------------------------------------------

# overlay where the kernel allows it, else vfs (or BUILD_IMAGE_STORAGE_DRIVER); each driver has its
# own root, and the choice is remembered so every later run finds its base and layer cache again.
driver_ok() {
    local ctr
    ctr=$(buildah --root "$cache/storage-$1" --runroot "/run/scheduler-build/$1" --storage-driver "$1" \
          from scratch 2>/dev/null) || return 1
    buildah --root "$cache/storage-$1" --runroot "/run/scheduler-build/$1" --storage-driver "$1" \
        mount "$ctr" >/dev/null 2>&1
    local ok=$?
    buildah --root "$cache/storage-$1" --runroot "/run/scheduler-build/$1" --storage-driver "$1" \
        rm "$ctr" >/dev/null 2>&1 || true
    return $ok
}
if [ -n "${BUILD_IMAGE_STORAGE_DRIVER:-}" ]; then
    driver=$BUILD_IMAGE_STORAGE_DRIVER
elif [ -s "$cache/driver" ]; then
    driver=$(cat "$cache/driver")
elif driver_ok overlay; then
    driver=overlay
else
    driver=vfs
fi
echo "$driver" > "$cache/driver"
bh() { buildah --root "$cache/storage-$driver" --runroot "/run/scheduler-build/$driver" --storage-driver "$driver" "$@"; }
build() { bh build --isolation chroot --format docker --layers "$@"; }   # docker format keeps HEALTHCHECK

# -- 1. the base ----------------------------------------------------------------------------------

# The Debian mirror apt uses on this machine (one-line or deb822 sources), for debootstrap.
debian_mirror() {
    local uri=""
    uri=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' \
          /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
    if [ -z "$uri" ]; then
        uri=$(awk 'BEGIN { RS = "" }
                   /Suites:[^\n]*bookworm([ \t]|\n|$)/ && match($0, /URIs:[ \t]*[^ \t\n]+/) {
                       s = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", s); print s; exit
                   }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    fi
    echo "${DEBIAN_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}

start=$SECONDS
if bh inspect --type image "$base_image" >/dev/null 2>&1; then
    base_note="base cached"
else
    mirror=$(debian_mirror)
    say "making the base with debootstrap from $mirror (once; cached in $cache)"
    rootfs="$cache/rootfs.partial"
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip \
        bookworm "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    mkdir "$work/base"
    tar -C "$rootfs" --numeric-owner -cf "$work/base/rootfs.tar" .
    printf 'FROM scratch\nADD rootfs.tar /\nENV LANG=C.UTF-8\nCMD ["python3"]\n' > "$work/base/Containerfile"
    bh build --isolation chroot --format docker -f "$work/base/Containerfile" -t "$base_image" "$work/base" \
        > "$work/base.log" 2>&1 || { tail -n 20 "$work/base.log" >&2; die "importing the base failed"; }
    rm -rf "$rootfs" "$work/base"
    base_note="base made in $((SECONDS - start)) s"
fi

# -- 2. the image ---------------------------------------------------------------------------------

# pip's index and CA bundle as this machine configures them (never printed: an index URL can carry
# a token). A file:// index or find-links folder is not reachable from inside the build; skipped.
pip_setting() {
    local value="${!1:-}"
    [ -n "$value" ] || value=$(python3 -m pip config get "$2" 2>/dev/null || true)
    echo "$value"
}
build_args=(--build-arg "BASE=$base_image")
index_url=$(pip_setting PIP_INDEX_URL global.index-url)
case "$index_url" in
    http://*|https://*) build_args+=(--build-arg "PIP_INDEX_URL=$index_url") ;;
    *) index_url="" ;;
esac
ca_bundle=$(pip_setting PIP_CERT global.cert)
[ -f "$ca_bundle" ] || ca_bundle=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca_bundle" ] && build_args+=(--secret "id=pip-cert,src=$ca_bundle")

step=$SECONDS
build "${build_args[@]}" -t "$image" "$repo" > "$work/build.log" 2>&1 \
    || { tail -n 30 "$work/build.log" >&2; die "buildah build of the Dockerfile failed"; }
build_seconds=$((SECONDS - step))

# -- 3. the image's configuration -----------------------------------------------------------------

bh inspect --type image "$image" > "$work/image.json"
INDEX_URL="$index_url" python3 - "$work/image.json" <<'PY' || die "the image's configuration is wrong (above)"
import json, os, sys
image = json.load(open(sys.argv[1]))
config = image["Docker"]["config"]
problems = []
if config.get("Entrypoint") != ["scheduler"]:
    problems.append(f"ENTRYPOINT is {config.get('Entrypoint')!r}, not the exec form ['scheduler']")
if (config.get("Cmd") or [None])[0] != "run":
    problems.append(f"CMD is {config.get('Cmd')!r}, not ['run', ...]")
user = (config.get("User") or "root").split(":")[0]
if user in ("", "0", "root"):
    problems.append(f"USER is {config.get('User')!r}: the image runs as root")
if (config.get("Healthcheck") or {}).get("Test") != ["CMD", "scheduler", "health"]:
    problems.append(f"HEALTHCHECK is {config.get('Healthcheck')!r}, not CMD scheduler health")
env = config.get("Env") or []
if "PYTHONUNBUFFERED=1" not in env:
    problems.append("PYTHONUNBUFFERED=1 is not set")
if any(item.startswith("PIP_") for item in env):
    problems.append("a pip setting is in the final image's environment")
index = os.environ.get("INDEX_URL")
if index and index in json.dumps(image):
    problems.append("the build's package index URL is in the final image's configuration or history")
for problem in problems:
    print("  " + problem, file=sys.stderr)
sys.exit(1 if problems else 0)
PY

# -- 4. a derived image with a table of one every-second schedule ---------------------------------

mkdir "$work/table"
cat > "$work/table/schedules.toml" <<'TOML'
[[schedule]]
name = "proof"
every = "1s"
job = "Proof"
TOML
build --build-arg "BASE=$image" -f "$repo/deploy/table.Dockerfile" -t "$table_image" "$work/table" \
    > "$work/table.log" 2>&1 || { tail -n 20 "$work/table.log" >&2; die "building the derived table image failed"; }

# What the image runs, as its configuration says (ENTRYPOINT + CMD, environment, user, directory).
read_config() {
    python3 - "$work/table.json" "$1" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))["Docker"]["config"]
what = sys.argv[2]
if what == "command":
    print("\0".join(config["Entrypoint"] + config["Cmd"]), end="")
elif what == "env":
    print("\0".join(config["Env"]), end="")
else:
    print(config[{"user": "User", "workdir": "WorkingDir"}[what]], end="")
PY
}
bh inspect --type image "$table_image" > "$work/table.json"
mapfile -d '' command < <(read_config command)
mapfile -d '' image_env < <(read_config env)
user=$(read_config user)
workdir=$(read_config workdir)

# -- a redis-server of our own, on a free loopback port -------------------------------------------

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    --maxmemory-policy noeviction > "$work/redis.log" 2>&1 &
redis_pid=$!
rcli() { redis-cli -h 127.0.0.1 -p "$port" "$@"; }
deadline=$((SECONDS + 10))
until [ "$(rcli ping 2>/dev/null)" = PONG ]; do
    [ $SECONDS -lt $deadline ] || die "redis-server did not answer on port $port"
    sleep 0.1
done
# The replicas share the host's network: their HTTP endpoints get a free port, not the default 9108,
# which something else on this host may hold.
http_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run_env=("SCHEDULER_REDIS_URL=redis://127.0.0.1:$port/0" SCHEDULER_LOG_JSON=true "SCHEDULER_HTTP_PORT=$http_port")

# Poll until the command given succeeds, or fail at the deadline ($1 seconds).
wait_until() {
    local seconds=$1; shift
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}
logged() { grep -q "$2" "$1"; }
stream_longer_than() { [ "$(rcli xlen "$stream")" -gt "$1" ]; }
# Exited: no such process, or a zombie this shell has not reaped yet.
gone() { ! kill -0 "$1" 2>/dev/null || [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
# Logged $2, or fail at once when the replica's runner ($3) has already exited.
logged_while_running() {
    logged "$1" "$2" && return 0
    if gone "$3"; then tail -n 20 "$1" >&2; die "the replica exited before logging '$2'"; fi
    return 1
}

# The replica's process: the descendant of $1 whose command is the scheduler.
find_replica() {
    local pid
    for pid in $(pgrep -P "$1"); do
        if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = scheduler ]; then echo "$pid"; return 0; fi
        find_replica "$pid" && return 0
    done
    return 1
}

# Wait for the lease and a firing, send SIGTERM to the replica, expect exit 0 within $stop_within s.
# $1 a name, $2 its log, $3 the stream's length before; the replica runs under $runner_pid.
prove_replica() {
    local name=$1 log=$2 before=$3 replica_pid
    wait_until 30 logged_while_running "$log" '"message": "acquired the lease' "$runner_pid" \
        || { tail -n 20 "$log" >&2; die "$name: no 'acquired the lease' within 30 s"; }
    wait_until 15 stream_longer_than "$before" \
        || { tail -n 20 "$log" >&2; die "$name: nothing reached $stream within 15 s of leading"; }
    replica_pid=$(find_replica "$runner_pid") || die "$name: cannot find the scheduler process"
    local signalled=$EPOCHREALTIME
    kill -TERM "$replica_pid"
    wait_until "$stop_within" gone "$runner_pid" \
        || { tail -n 20 "$log" >&2; die "$name: still running $stop_within s after SIGTERM"; }
    local status=0
    wait "$runner_pid" || status=$?
    stop_seconds=$(python3 -c "print(f'{$EPOCHREALTIME - $signalled:.2f}')")
    runner_pid=""
    [ "$status" = 0 ] || { tail -n 20 "$log" >&2; die "$name: exited $status after SIGTERM, not 0"; }
    logged "$log" '"message": "released the lease' || { tail -n 20 "$log" >&2; die "$name: did not release the lease"; }
}

# -- 5. replica A: buildah run ----------------------------------------------------------------------

ctr=$(bh from "$table_image")
containers+=("$ctr")
env_flags=()
for item in "${run_env[@]}" SCHEDULER_REPLICA_ID=proof-buildah-run; do env_flags+=(--env "$item"); done
bh run --isolation chroot --network host "${env_flags[@]}" "$ctr" -- "${command[@]}" > "$work/replica-a.log" 2>&1 &
runner_pid=$!
prove_replica "replica A (buildah run)" "$work/replica-a.log" 0
a_stop=$stop_seconds
a_count=$(rcli xlen "$stream")

# -- 6. replica B: PID 1 of its own PID namespace, read-only root, the image's user -----------------

ctr=$(bh from "$table_image")
containers+=("$ctr")
root=$(bh mount "$ctr")
unshare --pid --fork --mount --propagation private sh -c '
    root=$1 user=$2 workdir=$3; shift 3
    mount --bind "$root" "$root" && mount -o remount,bind,ro "$root" || exit 97
    if touch "$root/.writable" 2>/dev/null; then echo "the root file system is writable" >&2; exit 98; fi
    mount -t proc proc "$root/proc" || exit 97
    exec chroot --userspec="$user" --groups="${user#*:}" "$root" /usr/bin/env -i -C "$workdir" "$@"
' sh "$root" "$user" "$workdir" "${image_env[@]}" "${run_env[@]}" SCHEDULER_REPLICA_ID=proof-pid-1 "${command[@]}" \
    > "$work/replica-b.log" 2>&1 &
runner_pid=$!
wait_until 30 find_replica "$runner_pid" >/dev/null || { tail -n 20 "$work/replica-b.log" >&2; die "replica B did not start"; }
nspid=$(awk '/^NSpid:/ { print $NF }' "/proc/$(find_replica "$runner_pid")/status")
[ "$nspid" = 1 ] || die "replica B is PID $nspid in its namespace, not 1"
prove_replica "replica B (PID 1, read-only root)" "$work/replica-b.log" "$a_count"
b_stop=$stop_seconds
b_count=$(rcli xlen "$stream")
bh umount "$ctr" >/dev/null

keep_work=${BUILD_IMAGE_KEEP_LOGS:-0}   # 1: keep the logs of a successful run too
echo "build-image: ok in $((SECONDS - start)) s ($base_note, storage $driver, image built in ${build_seconds} s):" \
     "replica A (buildah run) led, $stream at $a_count, exited 0 ${a_stop} s after SIGTERM;" \
     "replica B (PID 1, read-only root, user $user) led, $stream at $b_count, exited 0 ${b_stop} s after SIGTERM"
