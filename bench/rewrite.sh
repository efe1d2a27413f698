#!/usr/bin/env bash
# rewrite.sh: the `layerslim rewrite` benchmark, side by side in one run.
#
# Usage: bench/rewrite.sh            (as root, from anywhere)
#
# Input: the fat image of bench/recompress.sh (a debootstrap Debian base, apt
# install of build tools without cleanup, the Go toolchain and a Go build
# cache, unstripped Go binaries), plus a fifth layer that deletes part of
# the toolchain and overwrites files, as a late "cleanup" step does.
# It prints:
#   - analyze's figures for that image;
#   - the rewrite's wall time, peak RSS and output size (default options:
#     --drop default, --squash auto, --strip unneeded, zstd -3);
#   - the hand-made best case for the same content: the slim image's merged
#     filesystem flattened into one tar and compressed with zstd -3;
#   - skopeo copy --dest-compress-format zstd of the same source (the
#     recompression alone).
# Targets: output <= 1.03x the best case, wall <= 0.7x skopeo's, RSS <= 128 MiB.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=${BENCH_OUT:-$HERE/out}
FAT=$OUT/fat
FAT5=$OUT/fat5
RUN=$OUT/rewrite-run

die() { echo "rewrite.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }
for tool in skopeo umoci pigz zstd jq /usr/bin/time; do
	command -v "$tool" >/dev/null || die "missing tool: $tool"
done
[[ $(id -u) == 0 ]] || die "must run as root"

bash "$HERE/recompress.sh" --build-only >&2

# sum_layers DIR TAG: bytes of the layer blobs of the image tagged TAG.
manifest_of() {
	local dir=$1 tag=$2 d
	d=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]==$t) | .digest' "$dir/index.json" | head -1)
	[[ -n $d ]] || die "no tag $tag in $dir"
	echo "$dir/blobs/sha256/${d#sha256:}"
}
sum_layers() { jq '[.layers[].size] | add' "$(manifest_of "$1" "$2")"; }

build_fat5() {
	log "adding a cleanup layer to $FAT → $FAT5"
	rm -rf "$FAT5" "$FAT5.tmp"
	cp -al "$FAT" "$FAT5.tmp"
	# Hardlinked: files that change must be new files, not rewritten in place.
	rm -f "$FAT5.tmp/index.json"
	local stage=$OUT/fat5-stage m cfg
	rm -rf "$stage"
	mkdir -p "$stage/usr/local/go" "$stage/etc" "$stage/app/share"
	: >"$stage/usr/local/go/.wh.test"
	: >"$stage/usr/local/go/.wh.api"
	: >"$stage/app/share/.wh.api"
	printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm), slimmed"\nID=debian\n' >"$stage/etc/os-release"
	printf 'welcome to the fat image\n' >"$stage/etc/motd"
	tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1735689660 -cf "$OUT/layer5.tar" .
	local diffid gz digest size
	diffid=$(sha256sum "$OUT/layer5.tar" | cut -d' ' -f1)
	pigz -6 -n -c "$OUT/layer5.tar" >"$FAT5.tmp/blobs/sha256/l5"
	digest=$(sha256sum "$FAT5.tmp/blobs/sha256/l5" | cut -d' ' -f1)
	size=$(stat -c %s "$FAT5.tmp/blobs/sha256/l5")
	mv "$FAT5.tmp/blobs/sha256/l5" "$FAT5.tmp/blobs/sha256/$digest"
	m=$(manifest_of "$FAT" fat)
	cfg=$FAT/blobs/sha256/$(jq -r '.config.digest' "$m" | cut -d: -f2)
	local config manifest cdig mdig
	config=$(jq -c --arg d "sha256:$diffid" '.rootfs.diff_ids += [$d] |
		.history += [{created: "2025-01-01T00:01:00Z", created_by: "RUN rm -rf /usr/local/go/test /usr/local/go/api /app/share/api && echo ... >/etc/os-release"}]' "$cfg")
	cdig=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
	printf '%s' "$config" >"$FAT5.tmp/blobs/sha256/$cdig"
	manifest=$(jq -c --arg c "sha256:$cdig" --argjson cs "$(printf "%s" "$config" | wc -c)" --arg d "sha256:$digest" --argjson s "$size" \
		'.config.digest = $c | .config.size = $cs | .layers += [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d, size: $s}]' "$m")
	mdig=$(printf '%s' "$manifest" | sha256sum | cut -d' ' -f1)
	printf '%s' "$manifest" >"$FAT5.tmp/blobs/sha256/$mdig"
	jq -cn --arg d "sha256:$mdig" --argjson s "$(printf "%s" "$manifest" | wc -c)" '{schemaVersion: 2,
		mediaType: "application/vnd.oci.image.index.v1+json",
		manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
			annotations: {"org.opencontainers.image.ref.name": "fat"}}]}' >"$FAT5.tmp/index.json"
	rm -rf "$stage" "$OUT/layer5.tar"
	mv "$FAT5.tmp" "$FAT5"
}
[[ -f $FAT5/index.json ]] || build_fat5

log "building layerslim"
(cd "$ROOT" && go build -o "$OUT/layerslim" ./cmd/layerslim)
rm -rf "$RUN"
mkdir -p "$RUN"
# A warm page cache for every tool: read the input once.
cat "$FAT5"/blobs/sha256/* >/dev/null

log "analyze"
"$OUT/layerslim" analyze "oci:$FAT5:fat" >"$RUN/analyze.txt"
analyze_json=$("$OUT/layerslim" analyze "oci:$FAT5:fat" --json)

log "layerslim rewrite"
sync # the writes of what ran before are not this run's
/usr/bin/time -f "%e %M %U %S" -o "$RUN/time.rewrite" "$OUT/layerslim" rewrite "oci:$FAT5:fat" "oci:$RUN/slim:slim" \
	--report "$RUN/report.json" --progress none >/dev/null 2>"$RUN/rewrite.log" ||
	{ cat "$RUN/rewrite.log" >&2; die "layerslim rewrite failed"; }
read -r rw_wall rw_rss rw_user rw_sys <"$RUN/time.rewrite"
rw_cpu=$(awk -v u="$rw_user" -v s="$rw_sys" 'BEGIN { print u + s }')
rw_bytes=$(sum_layers "$RUN/slim" slim)
dbg_bytes=$(( $(sum_layers "$RUN/slim" slim-debug) - rw_bytes ))

log "skopeo copy --dest-compress-format zstd"
sync
/usr/bin/time -f "%e %M %U %S" -o "$RUN/time.skopeo" skopeo copy -q --dest-compress-format zstd --dest-compress-level 3 \
	"oci:$FAT5:fat" "oci:$RUN/skopeo:fat" >/dev/null
read -r sk_wall sk_rss sk_user sk_sys <"$RUN/time.skopeo"
sk_cpu=$(awk -v u="$sk_user" -v s="$sk_sys" 'BEGIN { print u + s }')
sk_bytes=$(sum_layers "$RUN/skopeo" fat)

log "the hand-made best case: the slim image flattened, one zstd -3 layer"
skopeo copy -q --dest-compress-format gzip "oci:$RUN/slim:slim" "oci:$RUN/slim-gz:slim" >/dev/null
umoci unpack --image "$RUN/slim-gz:slim" "$RUN/bundle" >/dev/null
best_bytes=$(tar -C "$RUN/bundle/rootfs" --sort=name --numeric-owner -cf - . | zstd -3 -T0 -q -c | wc -c)
src_bytes=$(sum_layers "$FAT5" fat)
rm -rf "$RUN/bundle" "$RUN/slim-gz" "$RUN/skopeo"

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
check() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }' && echo PASS || echo FAIL; }

{
	echo
	echo "rewrite benchmark: source $(mib "$src_bytes") MiB gzip in $(jq '.layers | length' "$(manifest_of "$FAT5" fat)") layers; $(nproc) CPUs; load average $(cut -d' ' -f1 /proc/loadavg)"
	echo
	echo "analyze (per layer and total):"
	sed 's/^/  /' "$RUN/analyze.txt" | head -40
	echo
	printf '%-34s %10s %8s %14s %14s\n' "" "wall s" "cpu s" "peak RSS MiB" "output MiB"
	printf '%-34s %10s %8s %14s %14s\n' "layerslim rewrite (slim image)" "$rw_wall" "$rw_cpu" "$(mib $((rw_rss * 1024)))" "$(mib "$rw_bytes")"
	printf '%-34s %10s %8s %14s %14s\n' "  + its debug layer" "" "" "" "$(mib "$dbg_bytes")"
	printf '%-34s %10s %8s %14s %14s\n' "skopeo copy zstd -3 (recompress)" "$sk_wall" "$sk_cpu" "$(mib $((sk_rss * 1024)))" "$(mib "$sk_bytes")"
	printf '%-34s %10s %8s %14s %14s\n' "hand-made best case (flat zstd -3)" "" "" "" "$(mib "$best_bytes")"
	echo
	echo "targets:"
	echo "  output / best case = $(ratio "$rw_bytes" "$best_bytes") (<= 1.03): $(check "$(ratio "$rw_bytes" "$best_bytes")" 1.03)"
	echo "  wall / skopeo      = $(ratio "$rw_wall" "$sk_wall") (<= 0.75, issue 15): $(check "$(ratio "$rw_wall" "$sk_wall")" 0.75)"
	max_rss=$((96 + 24 * $(nproc)))
	echo "  peak RSS           = $(mib $((rw_rss * 1024))) MiB (<= $max_rss, 96 + 24 per CPU): $(check "$rw_rss" $((max_rss * 1024)))"
	echo
	echo "base kept as separate layers: $(jq -r '.report.images[0].base | "\(.layers) layer(s): \(.reason)"' "$RUN/report.json")"
	echo "analyze estimate after rewrite and zstd: $(echo "$analyze_json" | jq -r '.images[0].totals.estimatedZstd') bytes; waste $(echo "$analyze_json" | jq -r '.images[0].wastePercent | floor')%"
} | tee "$RUN/results.txt"
