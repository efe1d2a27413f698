#!/usr/bin/env bash
# batch.sh: the `layerslim batch` benchmark, side by side in one run.
#
# Usage: bench/batch.sh [--images N] [--base-mb M] [--jobs J]   (as root, from anywhere)
#
# Input: N images (default 20), each in its own repository of a private
# registry (Debian's docker-registry, started by .ci/services.sh), all on one
# gzip base layer of real content from this machine (files of
# /usr/lib/x86_64-linux-gnu, or /usr/lib, up to M MiB uncompressed, default
# 120) plus a small app layer of their own (1 MiB of random bytes, a docs
# file and a tmp file).
# Three ways to make zstd copies of all N, each to its own tags:
#   1. layerslim batch PLAN --jobs J (default 2), fresh memo;
#   2. a shell loop of N `layerslim rewrite` calls with the same options;
#   3. a shell loop of N `skopeo copy --dest-compress-format zstd` (each
#      through a fresh OCI layout: registry to registry, skopeo 1.9 reuses
#      the gzip blobs it finds instead of recompressing).
# Options for 1 and 2: --strip none --squash none (drop default, zstd -3):
# the layer memo is bypassed when a debug image is built.
# It prints wall times, batch's peak RSS, and the registry's storage (du of
# its directory) before and after each. Targets: batch wall <= 0.3x the loop
# of single rewrites; the storage after holds the rewritten base once.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=${BENCH_OUT:-$HERE/out}
RUN=$OUT/batch-run
N=20
BASE_MB=120
JOBS=2

die() { echo "batch.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }
while (($#)); do
	case $1 in
	--images) N=${2:?}; shift ;;
	--base-mb) BASE_MB=${2:?}; shift ;;
	--jobs) JOBS=${2:?}; shift ;;
	-h | --help) sed -n '2,/^set -E/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done
[[ $N =~ ^[1-9][0-9]*$ && $BASE_MB =~ ^[1-9][0-9]*$ && $JOBS =~ ^[1-9][0-9]*$ ]] || die "--images, --base-mb and --jobs take numbers"
for tool in skopeo pigz jq sha256sum /usr/bin/time; do
	command -v "$tool" >/dev/null || die "missing tool: $tool"
done
[[ $(id -u) == 0 ]] || die "must run as root (the registry of .ci/services.sh)"

rm -rf "$RUN"
mkdir -p "$RUN"
[[ -f $OUT/go.mod ]] || echo "module scratch" >"$OUT/go.mod"

log "building layerslim"
(cd "$ROOT" && go build -o "$RUN/layerslim" ./cmd/layerslim)
LS=$RUN/layerslim

SVC=""
cleanup() {
	[[ -n $SVC ]] && bash "$ROOT/.ci/services.sh" stop "$SVC" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log "starting a registry"
eval "$(LAYERSLIM_SKIP_CONTAINERD=1 bash "$ROOT/.ci/services.sh" start)"
SVC=$LAYERSLIM_SVC_DIR
REG=$LAYERSLIM_TEST_REGISTRY
STORE=$LAYERSLIM_TEST_REGISTRY_DIR

# ---------------------------------------------------------------------------
# The input: an OCI layout with N tags on one base blob, pushed with skopeo.
# ---------------------------------------------------------------------------
MTIME=@1735689660
TAROPTS=(--sort=name --owner=0 --group=0 --numeric-owner --mtime="$MTIME" --format=gnu)
blob() { # blob FILE MEDIATYPE: moves FILE into the layout, prints a descriptor
	local f=$1 mt=$2 d s
	d=$(sha256sum "$f" | cut -d' ' -f1)
	s=$(stat -c %s "$f")
	mv "$f" "$RUN/in/blobs/sha256/$d"
	jq -cn --arg mt "$mt" --arg d "sha256:$d" --argjson s "$s" '{mediaType: $mt, digest: $d, size: $s}'
}
mkdir -p "$RUN/in/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$RUN/in/oci-layout"

src=/usr/lib/x86_64-linux-gnu
[[ -d $src ]] || src=/usr/lib
log "base layer: files of $src up to $BASE_MB MiB"
(cd / && find "${src#/}" -xdev -type f -size -20M -printf '%s %p\n' | LC_ALL=C sort -k2 |
	awk -v max=$((BASE_MB << 20)) 'full { next } n + $1 > max { full = 1; next } { n += $1; print substr($0, index($0, " ") + 1) }') >"$RUN/base.list"
tar -C / "${TAROPTS[@]}" -cf "$RUN/base.tar" --files-from="$RUN/base.list"
base_raw=$(stat -c %s "$RUN/base.tar")
base_diff=sha256:$(sha256sum "$RUN/base.tar" | cut -d' ' -f1)
pigz -6 -n -c "$RUN/base.tar" >"$RUN/base.tar.gz"
rm -f "$RUN/base.tar"
base_desc=$(blob "$RUN/base.tar.gz" application/vnd.oci.image.layer.v1.tar+gzip)

index='[]'
for ((i = 0; i < N; i++)); do
	app=$RUN/app$i
	mkdir -p "$app/app" "$app/usr/share/doc/app$i" "$app/tmp"
	head -c 1048576 /dev/urandom >"$app/app/blob"
	echo "app $i" >"$app/app/id"
	echo "changes of app $i" >"$app/usr/share/doc/app$i/changelog"
	echo "build log" >"$app/tmp/build.log"
	tar -C "$app" "${TAROPTS[@]}" -cf "$RUN/app.tar" app usr tmp
	app_diff=sha256:$(sha256sum "$RUN/app.tar" | cut -d' ' -f1)
	pigz -6 -n -c "$RUN/app.tar" >"$RUN/app.tar.gz"
	rm -rf "$RUN/app.tar" "$app"
	app_desc=$(blob "$RUN/app.tar.gz" application/vnd.oci.image.layer.v1.tar+gzip)
	jq -cn --arg b "$base_diff" --arg a "$app_diff" '{architecture: "amd64", os: "linux",
		config: {Cmd: ["/app/id"]}, rootfs: {type: "layers", diff_ids: [$b, $a]},
		history: [{created_by: "base"}, {created_by: "app"}]}' >"$RUN/config.json"
	cfg_desc=$(blob "$RUN/config.json" application/vnd.oci.image.config.v1+json)
	jq -cn --argjson c "$cfg_desc" --argjson b "$base_desc" --argjson a "$app_desc" \
		'{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: $c, layers: [$b, $a]}' >"$RUN/manifest.json"
	m_desc=$(blob "$RUN/manifest.json" application/vnd.oci.image.manifest.v1+json)
	index=$(jq -c --argjson m "$m_desc" --arg t "app$i" '. + [$m + {annotations: {"org.opencontainers.image.ref.name": $t}}]' <<<"$index")
done
jq -n --argjson m "$index" '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: $m}' >"$RUN/in/index.json"

log "pushing $N images to $REG"
for ((i = 0; i < N; i++)); do
	skopeo copy -q --dest-tls-verify=false "oci:$RUN/in:app$i" "docker://$REG/bench/app$i:1.0" >/dev/null
done

du_b() { du -sb "$STORE" | cut -f1; }
now() { date +%s.%N; }
st0=$(du_b)

# ---------------------------------------------------------------------------
# 1. layerslim batch
# ---------------------------------------------------------------------------
{
	echo "defaults: {strip: none, squash: none}"
	echo "images:"
	for ((i = 0; i < N; i++)); do
		echo "  - {src: $REG/bench/app$i:1.0, dst: $REG/bench/app$i:1.0-batch}"
	done
} >"$RUN/plan.yaml"
log "layerslim batch --jobs $JOBS ($N images)"
/usr/bin/time -f "%e %M" -o "$RUN/time.batch" "$LS" batch "$RUN/plan.yaml" --jobs "$JOBS" \
	--cache-dir "$RUN/memo" --report "$RUN/batch.json" >"$RUN/batch.out" 2>"$RUN/batch.err" ||
	{ tail -30 "$RUN/batch.err" >&2; die "layerslim batch failed"; }
read -r b_wall b_rss <"$RUN/time.batch"
st1=$(du_b)
b_done=$(jq '.totals.done' "$RUN/batch.json")

# The rewritten base: the first layer of every output, which must be one blob.
base_outs=$(for ((i = 0; i < N; i++)); do
	skopeo inspect --raw --tls-verify=false "docker://$REG/bench/app$i:1.0-batch" | jq -r '.layers[0].digest'
done | sort -u)
[[ $(wc -l <<<"$base_outs") == 1 ]] || die "the batch outputs do not share one base: $base_outs"
base_out=${base_outs#sha256:}
base_zst=$(stat -c %s "$STORE/docker/registry/v2/blobs/sha256/${base_out:0:2}/$base_out/data")
base_copies=$(find "$STORE/docker/registry/v2/blobs" -name data -size "${base_zst}c" | wc -l)

# ---------------------------------------------------------------------------
# 2. a loop of single rewrites, same options
# ---------------------------------------------------------------------------
log "a loop of $N layerslim rewrite calls"
t0=$(now)
for ((i = 0; i < N; i++)); do
	"$LS" rewrite "$REG/bench/app$i:1.0" "$REG/bench/app$i:1.0-loop" --strip none --squash none \
		--progress none >/dev/null 2>>"$RUN/loop.err" || die "rewrite app$i failed (see $RUN/loop.err)"
done
l_wall=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
st2=$(du_b)
same=0
for ((i = 0; i < N; i++)); do
	a=$(skopeo inspect --raw --tls-verify=false "docker://$REG/bench/app$i:1.0-batch" | sha256sum)
	b=$(skopeo inspect --raw --tls-verify=false "docker://$REG/bench/app$i:1.0-loop" | sha256sum)
	[[ $a == "$b" ]] && same=$((same + 1))
done

# ---------------------------------------------------------------------------
# 3. a loop of skopeo copy --dest-compress-format zstd
# ---------------------------------------------------------------------------
# Registry to registry, skopeo (1.9) reuses the gzip blobs it finds there
# (or mounts them) instead of recompressing, so each copy goes through a
# fresh OCI layout: recompress into it, then push from it.
log "a loop of $N skopeo copy --dest-compress-format zstd (through an OCI layout)"
t0=$(now)
for ((i = 0; i < N; i++)); do
	rm -rf "$RUN/sk"
	skopeo copy -q --src-tls-verify=false --dest-compress-format zstd --dest-compress-level 3 \
		"docker://$REG/bench/app$i:1.0" "oci:$RUN/sk:x" >/dev/null
	skopeo copy -q --dest-tls-verify=false "oci:$RUN/sk:x" "docker://$REG/bench/app$i:1.0-skopeo" >/dev/null
done
rm -rf "$RUN/sk"
sk_types=$(skopeo inspect --raw --tls-verify=false "docker://$REG/bench/app0:1.0-skopeo" | jq -r '[.layers[].mediaType] | unique | join(",")')
s_wall=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
st3=$(du_b)

# ---------------------------------------------------------------------------
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
check() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "ok" : "MISSED" }'; }
{
	echo
	echo "$N images on one base: $(mib "$base_raw") MiB uncompressed, $(mib "$(jq .size <<<"$base_desc")") MiB gzip; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
	printf '%-46s %9s %13s %16s\n' "" "wall s" "peak RSS MiB" "storage +MiB"
	printf '%-46s %9s %13s %16s\n' "layerslim batch --jobs $JOBS ($b_done done)" "$b_wall" "$(mib $((b_rss * 1024)))" "$(mib $((st1 - st0)))"
	printf '%-46s %9s %13s %16s\n' "loop of $N layerslim rewrite" "$l_wall" "" "$(mib $((st2 - st1)))"
	printf '%-46s %9s %13s %16s\n' "loop of $N skopeo copy (zstd, via oci:)" "$s_wall" "" "$(mib $((st3 - st2)))"
	echo "registry storage: $(mib "$st0") MiB with the sources, $(mib "$st1") after batch, $(mib "$st2") after the rewrite loop, $(mib "$st3") after skopeo"
	echo "rewritten base: sha256:${base_out:0:12}, $(mib "$base_zst") MiB, $base_copies blob file(s) of that size in the storage"
	echo "outputs of batch and of the rewrite loop with the same digest: $same of $N; skopeo's layers: $sk_types"
	echo "targets:"
	echo "  batch / rewrite loop = $(ratio "$b_wall" "$l_wall") (<= 0.30): $(check "$(ratio "$b_wall" "$l_wall")" 0.30)"
	echo "  the rewritten base is stored once: $([[ $base_copies == 1 ]] && echo ok || echo MISSED)"
} | tee "$RUN/table.txt"
