#!/bin/sh
# The image, really built and run, on a machine that can pull no base image: Debian's podman,
# runc and mmdebstrap (`apt-get install podman runc mmdebstrap`), as root, and podman-compose
# 1.6.0 from PyPI in a virtualenv of its own (Debian's 1.0.3 appends a service's `command:` in an
# override file to the original instead of replacing it).
#
#   sh deploy/smoke.sh [--fresh]    # --fresh: bootstrap the base again and build without cache
#
# 1. bootstraps a Debian bookworm base with Python 3.11 from Debian's packages (mmdebstrap,
#    `podman import`; kept for the next run) and builds Redis and PostgreSQL images on it;
# 2. builds deploy/Dockerfile on that base (BASE build argument) from this working tree's
#    files (what git tracks or would track; .dockerignore then admits its part);
# 3. runs one `memeswap swap` in a fresh container;
# 4. brings deploy/compose.yaml up (Redis, PostgreSQL, the bot with no tokens: ops endpoints
#    only, two workers), waits until every container's health check passes, and pushes one
#    swap through Redis to the workers from inside the bot's container;
# 5. tears everything down (containers, volumes, the copy) and prints the figures.
# Not in CI: it takes minutes and needs root, podman and the network to Debian and PyPI.
set -eu
fresh=false
[ "${1:-}" = --fresh ] && fresh=true

repo=$(cd "$(dirname "$0")/.." && pwd)
export CONTAINERS_CONF="$repo/deploy/smoke/containers.conf"
base=localhost/memeswap-smoke-base:bookworm
project=memeswap-smoke
work=$(mktemp -d /tmp/memeswap-smoke.XXXXXX)
tools="${XDG_CACHE_HOME:-$HOME/.cache}/memeswap-smoke"
compose() {
    (cd "$work/src" && "$tools/venv/bin/podman-compose" -p "$project" -f deploy/compose.yaml -f deploy/smoke/compose.smoke.yaml "$@")
}
cleanup() {
    compose down -v >/dev/null 2>&1 || true
    podman volume ls -q --filter "label=io.podman.compose.project=$project" | xargs -r podman volume rm -f >/dev/null 2>&1 || true
    podman network rm -f "${project}_default" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '== %s\n' "$*"; }
within() {  # within BEGAN LIMIT_S COMMAND...: retry COMMAND each second; print the seconds from BEGAN once it passes
    from=$1 limit=$2
    shift 2
    while [ "$(since "$from" | cut -d. -f1)" -lt "$limit" ]; do
        if "$@"; then since "$from"; return 0; fi
        sleep 1
    done
    return 1
}

if [ ! -x "$tools/venv/bin/podman-compose" ]; then
    python3 -m venv "$tools/venv" && "$tools/venv/bin/pip" install -q podman-compose==1.6.0
fi
say "base image $base"
if $fresh; then podman rmi -f "$base" localhost/memeswap:latest >/dev/null 2>&1 || true; fi
if ! podman image exists "$base"; then
    began=$(now)
    # The host's CA bundle goes into the base: where the machine reaches PyPI through a
    # TLS-inspecting proxy, pip in the build then trusts what the host trusts.
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
        --customize-hook='cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/ca-certificates.crt"' \
        bookworm "$work/base.tar" http://deb.debian.org/debian
    podman import --quiet "$work/base.tar" "$base" >/dev/null
    rm -f "$work/base.tar"
    say "bootstrapped in $(since "$began") s"
fi

mkdir -p "$work/src" "$work/out"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -C "$work/src" -xf -
say "building redis and postgres images from Debian's packages"
podman build --quiet --build-arg BASE="$base" -t localhost/memeswap-smoke-redis -f "$work/src/deploy/smoke/redis.Containerfile" "$work/src/deploy/smoke" >/dev/null
podman build --quiet --build-arg BASE="$base" -t localhost/memeswap-smoke-postgres -f "$work/src/deploy/smoke/postgres.Containerfile" "$work/src/deploy/smoke" >/dev/null

say "building memeswap:latest"
began=$(now)
cache=""
if $fresh; then cache=--no-cache; fi
podman build --quiet $cache --format docker --build-arg BASE="$base" -t localhost/memeswap:latest -f "$work/src/deploy/Dockerfile" "$work/src" >/dev/null
build_s=$(since "$began")
size_mb=$(podman image inspect --format '{{.Size}}' localhost/memeswap:latest | awk '{ printf "%.0f", $1 / 1e6 }')
user=$(podman image inspect --format '{{.Config.User}}' localhost/memeswap:latest)
[ "$user" = "10001:10001" ] || { echo "the image runs as '$user', not 10001"; exit 1; }
podman run --rm --no-healthcheck --entrypoint sh localhost/memeswap:latest -c 'test ! -e /src && ! command -v gcc && ! command -v pip' \
    || { echo "the final image holds build tools or sources"; exit 1; }
say "built in $build_s s: $size_mb MB, user $user"

say "one memeswap swap in a fresh container"
chmod 777 "$work/out"
photo=/opt/memeswap/lib/python3.11/site-packages/memeswap/inference/sample_photos/grace_hopper.jpg
began=$(now)
podman run --rm --no-healthcheck -v "$work/out:/out" localhost/memeswap:latest swap "$photo" -t deal-with-it \
    -o /out/smoke.gif 2>"$work/swap.log" || { cat "$work/swap.log"; exit 1; }
swap_s=$(since "$began")
head -c 6 "$work/out/smoke.gif" | grep -q GIF89a || { echo "no GIF came out of memeswap swap"; exit 1; }
say "swap: $(wc -c < "$work/out/smoke.gif") bytes in $swap_s s (container start included)"

say "compose up"
python3 -c 'import secrets; print("POSTGRES_PASSWORD=" + secrets.token_urlsafe(24))' > "$work/src/deploy/.env"
export REDIS_IMAGE=localhost/memeswap-smoke-redis POSTGRES_IMAGE=localhost/memeswap-smoke-postgres
began=$(now)
compose up -d >"$work/compose-up.log" 2>&1 || { cat "$work/compose-up.log"; exit 1; }
containers=$(podman ps -a --filter "label=io.podman.compose.project=$project" --format '{{.Names}}')
workers=$(printf '%s\n' $containers | grep -c worker || true)
[ "$workers" -eq 2 ] || { echo "expected 2 workers, found $workers: $containers"; exit 1; }
unhealthy() {  # the containers whose health check fails now
    for name in $containers; do podman healthcheck run "$name" >/dev/null 2>&1 || printf ' %s' "$name"; done
}
all_healthy() { [ -z "$(unhealthy)" ]; }
healthy=$(within "$began" 300 all_healthy) || {
    left=$(unhealthy)
    echo "not healthy after 300 s:$left"
    for name in $left; do echo "--- $name"; podman logs --tail 20 "$name" 2>&1; done
    exit 1
}
say "all $(printf '%s\n' $containers | wc -l) containers healthy $healthy s after up"
waited=$(for name in $containers; do podman logs "$name" 2>&1; done | grep -c '"waiting for ' || true)
say "the bot and the workers logged $waited waits for PostgreSQL or Redis on the way"

python3 -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:9464/healthz", timeout=5)' \
    || { echo "the bot's /healthz is not reachable from the host on 127.0.0.1:9464"; exit 1; }
say "the bot's /healthz answers on the host's 127.0.0.1:9464"

say "one swap through Redis and a worker"
bot=$(printf '%s\n' $containers | grep bot)
began=$(now)
podman exec -i "$bot" python3 - < "$repo/deploy/smoke/submit_job.py" 2>"$work/job.log" || { cat "$work/job.log"; exit 1; }
job_s=$(since "$began")

say "a worker whose process dies (SIGKILL, as the OOM killer would) comes back by itself"
worker=$(printf '%s\n' $containers | grep worker | head -n 1)
kill -KILL "$(podman inspect --format '{{.State.Pid}}' "$worker")"  # `podman kill` counts as stopped by hand
worker_back() {
    [ "$(podman inspect --format '{{.State.Running}}' "$worker")" = true ] && podman healthcheck run "$worker" >/dev/null 2>&1
}
back=$(within "$(now)" 120 worker_back) || { echo "$worker did not come back within 120 s"; exit 1; }
say "$worker running and healthy again after $back s"

cat <<EOF

smoke test passed
  image memeswap:latest      $size_mb MB, built in $build_s s, runs as uid 10001
  memeswap swap              $swap_s s, fresh container (models load included)
  compose up to healthy      $healthy s (redis, postgres, bot, 2 workers)
  job through the workers    $job_s s (submitter's start included)
  worker SIGKILLed           back and healthy after $back s (restart: unless-stopped)
EOF
