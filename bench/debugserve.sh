#!/usr/bin/env bash
# bench/debugserve.sh: `layerslim debug serve` against a real registry.
#
#   bench/debugserve.sh [REGISTRY]     (default $LAYERSLIM_TEST_REGISTRY, plain HTTP)
#
# Pushes (bench/debugserve) one debug image with a ~100 MiB debug layer of 50
# incompressible files and 200 small debug images (20 files each), starts the
# server on all of them, and prints: the time to index, the time to the first
# byte and in all of a first request for a file of the big layer, of the same
# file again (cached), of another file of that layer (its blob cached), the
# peak RSS (VmHWM) of the server with 201 images indexed, and the time a
# restart on the same --cache-dir takes to be ready (reading no layer).
# Needs curl and Go.
set -euo pipefail
cd "$(dirname "$0")/.."
REG="${1:-${LAYERSLIM_TEST_REGISTRY:?give a registry host:port}}"
IMAGES="${IMAGES:-200}"
OUT="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$OUT"' EXIT
PID=

go build -o "$OUT/layerslim" ./cmd/layerslim
go run ./bench/debugserve -registry "$REG" -images "$IMAGES" >"$OUT/ids"
read -r _ BIG1 BIG2 < <(grep ^big "$OUT/ids")
read -r _ SMALL < <(grep ^small "$OUT/ids")

metric() { curl -s "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

start() {
	: >"$OUT/log"
	local t0=$EPOCHREALTIME
	"$OUT/layerslim" debug serve --insecure --listen 127.0.0.1:0 --cache-dir "$OUT/cache" --cache-size 2GiB --refresh 0 \
		"$REG/bench-debugserve/many" "$REG/bench-debugserve/big:app-debug" 2>>"$OUT/log" &
	PID=$!
	until URL="$(grep -o 'addr=http://[0-9.:]*' "$OUT/log" | head -1 | cut -d= -f2)" && [[ -n "$URL" ]]; do sleep 0.05; done
	until [[ "$(metric layerslim_debuginfod_refreshes_total)" == 1 ]]; do sleep 0.05; done
	[[ "$(metric layerslim_debuginfod_index_images)" == "$((IMAGES + 1))" ]] || { echo "not all images indexed:"; cat "$OUT/log"; exit 1; }
	printf '%-40s %8.3f s\n' "$1" "$(echo "$EPOCHREALTIME - $t0" | bc)"
}

get() { # label url
	curl -s -o /dev/null -w "%{http_code} %{time_starttransfer} %{time_total} %{size_download}\n" "$2" |
		awk -v l="$1" '{printf "%-40s %s  first byte %8.4f s  total %8.4f s  %d bytes\n", l, $1, $2, $3, $4}'
}

echo "registry $REG, $IMAGES small images + 1 big ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
start "start, index $((IMAGES + 1)) images"
get "big layer, first file, first request" "$URL/buildid/$BIG1/debuginfo"
get "big layer, same file again (cached)" "$URL/buildid/$BIG1/debuginfo"
get "big layer, another file (blob cached)" "$URL/buildid/$BIG2/debuginfo"
get "small image, first request" "$URL/buildid/$SMALL/debuginfo"
get "small image, again (cached)" "$URL/buildid/$SMALL/debuginfo"
get "unknown build-id" "$URL/buildid/00112233445566778899aabbccddeeff00112233/debuginfo"
echo "peak RSS (VmHWM) $(awk '/VmHWM/ {print $2, $3}' /proc/$PID/status), build-ids indexed $(metric layerslim_debuginfod_index_buildids), layers read $(metric layerslim_debuginfod_layer_reads_total)"
kill "$PID"; wait "$PID" 2>/dev/null || true
start "restart, list again (index reused)"
echo "layers read after the restart: $(metric layerslim_debuginfod_layer_reads_total), peak RSS $(awk '/VmHWM/ {print $2, $3}' /proc/$PID/status)"
