#!/usr/bin/env bash
# Side by side on one input: recompress to zstd, to zstd plus a gzip variant
# (--add-compression gzip), and to zstd:chunked; then rewrite (no debug
# image) without and with --add-compression gzip. Prints wall, peak RSS,
# user and system seconds (GNU time) and the output's blob bytes for each.
#
#   bench/addcompression.sh [OCI-LAYOUT:TAG]   (default oci:bench/out/fat:fat,
#                                                built by bench/recompress.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
in="${1:-oci:bench/out/fat:fat}"
out="$(mktemp -d "${TMPDIR:-/tmp}/layerslim-addcomp.XXXXXX")"
trap 'rm -rf "$out"' EXIT
go build -o "$out/layerslim" ./cmd/layerslim
dir="${in#oci:}"; dir="${dir%:*}"
cat "$dir"/blobs/sha256/* >/dev/null # a warm page cache for every run
printf '%-10s %8s %8s %8s %8s %14s %6s\n' run "wall s" "RSS MiB" "user s" "sys s" "blob bytes" load
one() {
	local name=$1
	shift
	sync
	local load
	load=$(cut -d' ' -f1 /proc/loadavg)
	/usr/bin/time -f "%e %M %U %S" -o "$out/time" "$out/layerslim" "$@" "$in" "oci:$out/$name:x" --progress none >/dev/null 2>"$out/log" ||
		{ cat "$out/log" >&2; exit 1; }
	read -r wall rss user sys <"$out/time"
	printf '%-10s %8s %8d %8s %8s %14d %6s\n' "$name" "$wall" $((rss / 1024)) "$user" "$sys" "$(du -sb "$out/$name/blobs" | cut -f1)" "$load"
	rm -rf "${out:?}/$name"
}
one zstd recompress --compression zstd
one dual recompress --compression zstd --add-compression gzip
one chunked recompress --compression zstd:chunked
one rw-zstd rewrite --no-debug-image
one rw-dual rewrite --no-debug-image --add-compression gzip
