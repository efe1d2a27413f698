#!/usr/bin/env bash
# recompress.sh: gzip→zstd recompression benchmark of layerslim against skopeo
# and against the "physical limit" (pigz -dc | zstd, two layers at a time) and a bare
# Go loop (bench/bareloop: klauspost gzip decode, sha256, zstd encode, two at a time).
#
# Usage: bench/recompress.sh [options]      (from anywhere; needs root)
#   --level N          zstd level for all three tools (default 3)
#   --jobs N           pass --jobs N to layerslim (default: layerslim's own default)
#   --runs N           run each tool N times, report the fastest run (default 1)
#   --cache warm|cold  warm: read the input blobs before each run (default);
#                      cold: drop the page cache before each run
#   --skip-layerslim   run only skopeo and the limit (e.g. while the CLI does not build)
#   --no-verify        do not check the outputs (digests, diff_ids, media types)
#   --rebuild-input    throw away the cached input image and build it again
#   --build-only       build (or reuse) the input image and stop
#   --baseline BIN     also time another layerslim binary (row "before"), e.g.
#                      one built from an earlier commit, in the same run
#   --input fat|big    fat: the four-layer image (default); big: one layer only,
#                      the largest of fat's (778 MiB tar, 379 MB gzip), the
#                      case where one layer must keep every core busy
#
# Everything it writes lives under bench/out/ (gitignored), or $BENCH_OUT.
# The input image (bench/out/fat, an OCI layout tagged "fat") is built once
# and reused by later runs. See bench/README.md.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=${BENCH_OUT:-$HERE/out}
FAT=$OUT/fat
SUITE=bookworm
INPUT=fat
BASELINE=

LEVEL=3
JOBS=
RUNS=1
CACHE=warm
SKIP_LAYERSLIM=0
VERIFY=1
REBUILD=0
BUILD_ONLY=0

die() { echo "recompress.sh: $*" >&2; exit 1; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }
log() { echo "== $*" >&2; }

while (($#)); do
	case $1 in
	--level) LEVEL=${2:?}; shift ;;
	--jobs) JOBS=${2:?}; shift ;;
	--runs) RUNS=${2:?}; shift ;;
	--cache) CACHE=${2:?}; shift ;;
	--skip-layerslim) SKIP_LAYERSLIM=1 ;;
	--no-verify) VERIFY=0 ;;
	--rebuild-input) REBUILD=1 ;;
	--build-only) BUILD_ONLY=1 ;;
	--input) INPUT=${2:?}; shift ;;
	--baseline) BASELINE=${2:?}; shift ;;
	-h | --help) sed -n '2,/^set -E/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done
case $CACHE in warm | cold) ;; *) die "--cache must be warm or cold" ;; esac
case $INPUT in fat | big) ;; *) die "--input must be fat or big" ;; esac
IN=$OUT/$INPUT
TAG=$INPUT
[[ $LEVEL =~ ^[0-9]+$ && $RUNS =~ ^[1-9][0-9]*$ ]] || die "--level and --runs take numbers"
[[ -z $JOBS || $JOBS =~ ^[1-9][0-9]*$ ]] || die "--jobs takes a number"

for tool in skopeo pigz zstd jq sha256sum /usr/bin/time; do
	command -v "$tool" >/dev/null || die "missing tool: $tool"
done
[[ $(id -u) == 0 ]] || die "must run as root (debootstrap, chroot, drop_caches)"
mkdir -p "$OUT"
# The rootfs under $OUT holds a copy of GOROOT: a go.mod here keeps it out of
# the repository's ./... patterns.
[[ -f $OUT/go.mod ]] || echo "module scratch" >"$OUT/go.mod"

# ---------------------------------------------------------------------------
# Part 1: the input image.
# ---------------------------------------------------------------------------

# debian_mirror prints the Debian archive URL this machine's apt uses for
# $SUITE (deb822 .sources first, then one-line sources.list).
debian_mirror() {
	local f url=
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -r $f ]] || continue
		# Print the first URI of the first enabled stanza whose Suites list $SUITE.
		url=$(awk -v suite="$SUITE" '
			function flush() {
				if (uris != "" && hassuite && enabled && found == "") found = uris
				uris = ""; hassuite = 0; enabled = 1
			}
			BEGIN { enabled = 1 }
			/^[ \t]*$/ { flush(); next }
			/^[ \t]*#/ { next }
			tolower($1) == "uris:" { uris = $2 }
			tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) hassuite = 1 }
			tolower($1) == "enabled:" && tolower($2) == "no" { enabled = 0 }
			END { flush(); print found }
		' "$f")
		[[ -n $url ]] && break
	done
	if [[ -z $url ]]; then
		url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			awk -v suite="$SUITE" '$1 == "deb" {
				i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
				if ($(i + 1) == suite) { print $i; exit }
			}')
	fi
	[[ -n $url ]] || die "no apt source for $SUITE in /etc/apt/sources.list*"
	echo "$url"
}

MOUNTS=()
unmount_all() {
	local i
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null ||
			echo "recompress.sh: could not unmount ${MOUNTS[i]}" >&2
	done
	MOUNTS=()
}
trap unmount_all EXIT
trap 'exit 130' INT TERM

# with_chroot_mounts DIR CMD...: runs CMD with /proc (and /dev, if the rootfs
# has no device nodes of its own) mounted under DIR; unmounts afterwards, and
# the EXIT trap unmounts if CMD fails or the script is interrupted.
with_chroot_mounts() {
	local dir=$1 rc=0
	shift
	mount -t proc proc "$dir/proc"
	MOUNTS+=("$dir/proc")
	if [[ ! -c $dir/dev/null ]]; then
		mount --bind /dev "$dir/dev"
		MOUNTS+=("$dir/dev")
	fi
	"$@" || rc=$?
	unmount_all
	return "$rc"
}

# layer_tar ROOTFS MARKER OUT.tar: a layer of everything under ROOTFS whose
# inode changed after MARKER was written (new and modified files; deletions
# are not tracked), plus the parent directories, in sorted order like a
# container builder's diff. Without MARKER: the whole tree.
layer_tar() {
	local rootfs=$1 marker=$2 out=$3 list
	list=$out.list
	if [[ -z $marker ]]; then
		(cd "$rootfs" && find . -mindepth 1 \( -path ./proc/\* -o -path ./sys/\* \) -prune -o -print)
	else
		(cd "$rootfs" && find . -mindepth 1 \( -path ./proc -o -path ./sys -o -path ./dev -o \
			-path ./etc/resolv.conf \) -prune -o -cnewer "$marker" -print)
	fi | awk '{ p = $0; sub(/^\.\//, "", p); n = split(p, a, "/"); q = a[1]; print q
		for (i = 2; i <= n; i++) { q = q "/" a[i]; print q } }' | LC_ALL=C sort -u >"$list"
	tar --create --file="$out" --directory="$rootfs" --format=gnu --numeric-owner \
		--no-recursion --verbatim-files-from --files-from="$list"
	rm -f "$list"
}

build_input() {
	local b=$OUT/build t0 mirror rootfs gz
	t0=$(date +%s)
	rm -rf "$FAT" "$OUT/fat.done" "$b"
	mkdir -p "$b"
	rootfs=$b/rootfs
	mirror=$(debian_mirror)

	log "layer 1: debootstrap --variant=minbase $SUITE (mirror from apt sources)"
	debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >"$b/debootstrap.log" 2>&1 ||
		{ tail -20 "$b/debootstrap.log" >&2; die "debootstrap failed (log: $b/debootstrap.log)"; }
	# As in Debian's container base images: no service starts during apt.
	printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
	chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
	layer_tar "$rootfs" "" "$b/layer1.tar"

	log "layer 2: apt-get install build tools in a chroot, no cleanup"
	touch "$b/marker2"
	sleep 1
	[[ -s $rootfs/etc/resolv.conf ]] || cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
	with_chroot_mounts "$rootfs" chroot "$rootfs" /usr/bin/env -i \
		PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 HOME=/root \
		sh -c 'apt-get update -q && apt-get install -y -q build-essential git python3-pip python3-venv curl' \
		>"$b/apt.log" 2>&1 ||
		{ tail -20 "$b/apt.log" >&2; die "apt-get in the chroot failed (log: $b/apt.log)"; }
	layer_tar "$rootfs" "$b/marker2" "$b/layer2.tar"

	log "layer 3: the Go toolchain and a Go build cache (go build std)"
	touch "$b/marker3"
	sleep 1
	cp -a "$(go env GOROOT)" "$rootfs/usr/local/go"
	mkdir -p "$rootfs/root/.cache/go-build"
	GOCACHE=$rootfs/root/.cache/go-build GOFLAGS= GOTOOLCHAIN=local CGO_ENABLED=0 \
		"$rootfs/usr/local/go/bin/go" build std >"$b/gocache.log" 2>&1 ||
		{ tail -20 "$b/gocache.log" >&2; die "go build std failed"; }
	layer_tar "$rootfs" "$b/marker3" "$b/layer3.tar"

	log "layer 4: an app (unstripped Go binaries and some assets)"
	touch "$b/marker4"
	sleep 1
	mkdir -p "$rootfs/app/bin" "$rootfs/app/share"
	# The host's go and build cache: nothing of this build lands in the rootfs
	# but the binaries.
	GOFLAGS= GOTOOLCHAIN=local CGO_ENABLED=0 \
		go build -trimpath -o "$rootfs/app/bin/" cmd/go cmd/gofmt cmd/vet \
		>"$b/app.log" 2>&1 || { tail -20 "$b/app.log" >&2; die "building the app failed"; }
	cp -a "$rootfs/usr/local/go/doc" "$rootfs/usr/local/go/api" "$rootfs/app/share/"
	layer_tar "$rootfs" "$b/marker4" "$b/layer4.tar"

	log "assembling the OCI layout $FAT (pigz -6 -n)"
	local tmp=$OUT/fat.tmp i diffid digest size total=0 layers=() diffids=() usizes=()
	rm -rf "$tmp"
	mkdir -p "$tmp/blobs/sha256"
	for i in 1 2 3 4; do
		diffid=$(sha256sum "$b/layer$i.tar" | cut -d' ' -f1)
		size=$(stat -c %s "$b/layer$i.tar")
		gz=$tmp/blobs/sha256/layer$i.tmp
		pigz -6 -n -c "$b/layer$i.tar" >"$gz"
		digest=$(sha256sum "$gz" | cut -d' ' -f1)
		mv "$gz" "$tmp/blobs/sha256/$digest"
		layers+=("$(jq -cn --arg d "sha256:$digest" --argjson s "$(stat -c %s "$tmp/blobs/sha256/$digest")" \
			'{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d, size: $s}')")
		diffids+=("sha256:$diffid")
		usizes+=("$size")
		total=$((total + size))
	done
	local config manifest cdig mdig
	config=$(jq -cn --arg d1 "${diffids[0]}" --arg d2 "${diffids[1]}" --arg d3 "${diffids[2]}" --arg d4 "${diffids[3]}" '{
		created: "2025-01-01T00:00:00Z", architecture: "amd64", os: "linux",
		config: {Env: ["PATH=/app/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"GOCACHE=/root/.cache/go-build"], Entrypoint: ["/app/bin/go"], Cmd: ["version"], WorkingDir: "/app"},
		rootfs: {type: "layers", diff_ids: [$d1, $d2, $d3, $d4]},
		history: [
			{created: "2025-01-01T00:00:00Z", created_by: "debootstrap --variant=minbase bookworm", comment: "base"},
			{created: "2025-01-01T00:00:00Z", created_by: "RUN apt-get update && apt-get install -y build-essential git python3-pip python3-venv curl"},
			{created: "2025-01-01T00:00:00Z", created_by: "ENV GOCACHE=/root/.cache/go-build", empty_layer: true},
			{created: "2025-01-01T00:00:00Z", created_by: "COPY /usr/local/go /usr/local/go; RUN go build std"},
			{created: "2025-01-01T00:00:00Z", created_by: "RUN go build -o /app/bin/ cmd/go cmd/gofmt cmd/vet"}
		]}')
	cdig=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
	printf '%s' "$config" >"$tmp/blobs/sha256/$cdig"
	manifest=$(printf '%s\n' "${layers[@]}" | jq -cs --arg c "sha256:$cdig" --argjson cs "${#config}" '{
		schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
		config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs}, layers: .}')
	mdig=$(printf '%s' "$manifest" | sha256sum | cut -d' ' -f1)
	printf '%s' "$manifest" >"$tmp/blobs/sha256/$mdig"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$tmp/oci-layout"
	jq -cn --arg d "sha256:$mdig" --argjson s "${#manifest}" --arg t fat '{schemaVersion: 2,
		mediaType: "application/vnd.oci.image.index.v1+json",
		manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
			annotations: {"org.opencontainers.image.ref.name": $t}}]}' >"$tmp/index.json"
	mv "$tmp" "$FAT"

	local secs=$(($(date +%s) - t0))
	jq -n --argjson secs "$secs" --argjson total "$total" --argjson sizes "$(printf '%s\n' "${usizes[@]}" | jq -s .)" \
		'{build_seconds: $secs, uncompressed_bytes: $total, layer_uncompressed_bytes: $sizes}' >"$OUT/fat.done"
	[[ ${KEEP_BUILD:-0} == 1 ]] || rm -rf "$b"
}

if ((REBUILD)) || [[ ! -f $OUT/fat.done || ! -f $FAT/index.json ]]; then
	build_input
	rm -rf "$OUT/big" "$OUT/big.done"
else
	log "reusing the input image $FAT (--rebuild-input to build it again)"
fi

# manifest_of DIR TAG: path of the image manifest blob tagged TAG in the OCI
# layout DIR (a single-platform image, or the first manifest of an index).
manifest_of() {
	local dir=$1 tag=$2 desc mt
	desc=$(jq -c --arg t "$tag" 'first(.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t))' "$dir/index.json")
	[[ -n $desc ]] || die "$dir: no manifest tagged $tag"
	mt=$(jq -r .mediaType <<<"$desc")
	case $mt in
	*index* | *manifest.list*)
		desc=$(jq -c '.manifests[0]' "$dir/blobs/$(jq -r '.digest | sub(":"; "/")' <<<"$desc")") ;;
	esac
	echo "$dir/blobs/$(jq -r '.digest | sub(":"; "/")' <<<"$desc")"
}
layer_bytes() { jq '[.layers[].size] | add' "$(manifest_of "$1" "$TAG")"; }

# build_big: $OUT/big, an OCI layout tagged "big" holding one layer, the
# largest of fat's (its gzip blob linked as it is), with its diff_id and
# history entry.
build_big() {
	local fm fc i tmp=$OUT/big.tmp layer diffid config manifest cdig mdig usize
	fm=$(manifest_of "$FAT" fat)
	fc=$FAT/blobs/$(jq -r '.config.digest | sub(":"; "/")' "$fm")
	i=$(jq '.layers | to_entries | max_by(.value.size) | .key' "$fm")
	layer=$(jq -c ".layers[$i]" "$fm")
	diffid=$(jq -r ".rootfs.diff_ids[$i]" "$fc")
	usize=$(jq ".layer_uncompressed_bytes[$i]" "$OUT/fat.done")
	rm -rf "$tmp"
	mkdir -p "$tmp/blobs/sha256"
	ln "$FAT/blobs/$(jq -r '.digest | sub(":"; "/")' <<<"$layer")" "$tmp/blobs/sha256/"
	config=$(jq -c --arg d "$diffid" --argjson i "$i" '.rootfs.diff_ids = [$d] | .history = [.history[] | select(.empty_layer | not)][$i:$i + 1]' "$fc")
	cdig=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
	printf '%s' "$config" >"$tmp/blobs/sha256/$cdig"
	manifest=$(jq -cn --arg c "sha256:$cdig" --argjson cs "${#config}" --argjson l "$layer" '{
		schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
		config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs}, layers: [$l]}')
	mdig=$(printf '%s' "$manifest" | sha256sum | cut -d' ' -f1)
	printf '%s' "$manifest" >"$tmp/blobs/sha256/$mdig"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$tmp/oci-layout"
	jq -cn --arg d "sha256:$mdig" --argjson s "${#manifest}" '{schemaVersion: 2,
		mediaType: "application/vnd.oci.image.index.v1+json",
		manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
			annotations: {"org.opencontainers.image.ref.name": "big"}}]}' >"$tmp/index.json"
	rm -rf "$OUT/big"
	mv "$tmp" "$OUT/big"
	jq -n --argjson u "$usize" --argjson secs "$(jq .build_seconds "$OUT/fat.done")" \
		'{build_seconds: $secs, uncompressed_bytes: $u, layer_uncompressed_bytes: [$u]}' >"$OUT/big.done"
}
if [[ $INPUT == big && ( ! -f $OUT/big.done || ! -f $OUT/big/index.json ) ]]; then
	log "building $OUT/big: the largest layer of $FAT alone"
	build_big
fi

IN_MANIFEST=$(manifest_of "$IN" "$TAG")
IN_COMPRESSED=$(jq '[.layers[].size] | add' "$IN_MANIFEST")
IN_UNCOMPRESSED=$(jq .uncompressed_bytes "$OUT/$INPUT.done")
BUILD_SECS=$(jq .build_seconds "$OUT/$INPUT.done")
log "input: $(jq '.layers | length' "$IN_MANIFEST") layers, $IN_UNCOMPRESSED bytes uncompressed" \
	"($(awk -v b="$IN_UNCOMPRESSED" 'BEGIN { printf "%.2f", b / 2^30 }') GiB), $IN_COMPRESSED bytes gzip;" \
	"building it took ${BUILD_SECS}s"
[[ $INPUT != fat ]] || ((IN_UNCOMPRESSED >= 1 << 30)) || echo "recompress.sh: warning: the input is under 1 GiB uncompressed" >&2
((BUILD_ONLY)) && exit 0

# ---------------------------------------------------------------------------
# Part 2: the runs.
# ---------------------------------------------------------------------------
LOAD_START=$(loadavg)
RUN=$OUT/run
[[ $INPUT == fat ]] || RUN=$OUT/run-$INPUT
RESULTS=$OUT/results.txt
[[ $INPUT == fat ]] || RESULTS=$OUT/results-$INPUT.txt
rm -rf "$RUN"
mkdir -p "$RUN"

if ((!SKIP_LAYERSLIM)); then
	log "go build -o $OUT/layerslim ./cmd/layerslim"
	(cd "$ROOT" && go build -o "$OUT/layerslim" ./cmd/layerslim) ||
		die "layerslim does not build (use --skip-layerslim to run the others)"
fi
log "go build -o $OUT/bareloop ./bench/bareloop"
(cd "$ROOT" && go build -o "$OUT/bareloop" ./bench/bareloop) || die "bench/bareloop does not build"

prepare_cache() {
	sync
	if [[ $CACHE == cold ]]; then
		if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
			echo "recompress.sh: cannot drop the page cache; using a warm cache instead" >&2
			CACHE=warm
		fi
	fi
	if [[ $CACHE == warm ]]; then
		cat "$IN"/blobs/sha256/* >/dev/null
	fi
}

# timed NAME DIR CMD...: runs CMD $RUNS times (DIR emptied before each run),
# keeps the fastest: sets WALL_<NAME> (s), CPU_<NAME> (user+system s) and
# RSS_<NAME> (KiB).
timed() {
	local name=$1 dir=$2 i wall rss user sys best=
	shift 2
	for ((i = 1; i <= RUNS; i++)); do
		rm -rf "$dir"
		prepare_cache
		log "run $i/$RUNS: $name (load average $(loadavg))"
		awk -v l="$(loadavg)" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }' &&
			echo "recompress.sh: warning: the machine is busy (load $(loadavg) on $(nproc) CPUs); timings will be noisy" >&2
		/usr/bin/time -f "%e %M %U %S" -o "$RUN/$name.time" "$@" >"$RUN/$name.log" 2>&1 ||
			{ tail -20 "$RUN/$name.log" >&2; die "$name failed (log: $RUN/$name.log)"; }
		read -r wall rss user sys <"$RUN/$name.time"
		echo "$name run $i/$RUNS: wall $wall s, user $user s, sys $sys s, peak RSS $rss KiB, load average $(loadavg)" |
			tee -a "$RUN/runs.txt" >&2
		if [[ -z $best ]] || awk -v a="$wall" -v b="$best" 'BEGIN { exit !(a < b) }'; then
			best=$wall
			printf -v "WALL_$name" %s "$wall"
			printf -v "RSS_$name" %s "$rss"
			printf -v "CPU_$name" %s "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')"
		fi
	done
	sync
}

# verify DIR: each layer blob has its digest, is zstd, and decompresses to the
# input's diff_id; the config keeps the input's diff_ids.
verify() {
	local dir=$1 m cfg i n digest mt diffid want
	m=$(manifest_of "$dir" "$TAG")
	cfg=$dir/blobs/$(jq -r '.config.digest | sub(":"; "/")' "$m")
	n=$(jq '.layers | length' "$m")
	[[ $(jq -c .rootfs.diff_ids "$cfg") == "$(jq -c .rootfs.diff_ids "$IN/blobs/$(jq -r '.config.digest | sub(":"; "/")' "$IN_MANIFEST")")" ]] ||
		die "$dir: diff_ids differ from the input's"
	for ((i = 0; i < n; i++)); do
		digest=$(jq -r ".layers[$i].digest" "$m")
		mt=$(jq -r ".layers[$i].mediaType" "$m")
		[[ $mt == *zstd* ]] || die "$dir: layer $i has media type $mt"
		[[ sha256:$(sha256sum <"$dir/blobs/${digest/://}" | cut -d' ' -f1) == "$digest" ]] ||
			die "$dir: layer $i does not match its digest $digest"
		diffid=sha256:$(zstd -dc <"$dir/blobs/${digest/://}" | sha256sum | cut -d' ' -f1)
		want=$(jq -r ".rootfs.diff_ids[$i]" "$cfg")
		[[ $diffid == "$want" ]] || die "$dir: layer $i decompresses to $diffid, want $want"
	done
	log "verified $dir: $n zstd layers, diff_ids unchanged"
}

# c. the physical limit: decompress and compress each layer with the C tools,
# two layers at a time.
LIMIT_OUT=$RUN/limit
jq -r '.layers[].digest | sub(":"; "/")' "$IN_MANIFEST" | sed "s|^|$IN/blobs/|" >"$RUN/limit.list"
limit_one() { pigz -dc "$1" | zstd "-$LEVEL" -T0 -q -o "$LIMIT_OUT/${1##*/}.zst"; }
export -f limit_one
export LEVEL LIMIT_OUT
timed limit "$LIMIT_OUT" bash -c 'mkdir -p "$LIMIT_OUT" && xargs -P2 -n1 bash -c '\''limit_one "$1"'\'' _ <"$0"' "$RUN/limit.list"
BYTES_limit=$(cat "$LIMIT_OUT"/*.zst | wc -c)

# d. the bare Go loop: klauspost gzip decode, sha256, klauspost zstd encode,
# two layers at a time (bench/bareloop), the floor for a Go tool.
BARE_OUT=$RUN/bare
timed bare "$BARE_OUT" "$OUT/bareloop" -o "$BARE_OUT" -level "$LEVEL" -jobs 2 $(cat "$RUN/limit.list")
BYTES_bare=$(cat "$BARE_OUT"/*.zst | wc -c)

# e. the serial part of each layer alone: gzip decode, sha256 of the blob
# and of the tar (bench/bareloop -decode-only), two layers at a time. One
# layer's recompression cannot get faster than this whatever the cores.
timed decode "$RUN/decode" "$OUT/bareloop" -decode-only -jobs 2 $(cat "$RUN/limit.list")
BYTES_decode=0

# b. skopeo.
SKOPEO_OUT=$RUN/skopeo
timed skopeo "$SKOPEO_OUT" skopeo --insecure-policy copy --quiet \
	--dest-compress-format zstd --dest-compress-level "$LEVEL" \
	"oci:$IN:$TAG" "oci:$SKOPEO_OUT:$TAG"
BYTES_skopeo=$(layer_bytes "$SKOPEO_OUT")
((VERIFY)) && verify "$SKOPEO_OUT"

# a. layerslim.
if ((!SKIP_LAYERSLIM)); then
	LS_OUT=$RUN/layerslim
	ls_args=(recompress "oci:$IN:$TAG" "oci:$LS_OUT:$TAG" --compression zstd --level "$LEVEL")
	[[ -n $JOBS ]] && ls_args+=(--jobs "$JOBS")
	timed layerslim "$LS_OUT" "$OUT/layerslim" "${ls_args[@]}"
	BYTES_layerslim=$(layer_bytes "$LS_OUT")
	((VERIFY)) && verify "$LS_OUT"
fi

# f. another layerslim binary, for before/after in one run.
if [[ -n $BASELINE ]]; then
	B_OUT=$RUN/before
	b_args=(recompress "oci:$IN:$TAG" "oci:$B_OUT:$TAG" --compression zstd --level "$LEVEL")
	[[ -n $JOBS ]] && b_args+=(--jobs "$JOBS")
	timed before "$B_OUT" "$BASELINE" "${b_args[@]}"
	BYTES_before=$(layer_bytes "$B_OUT")
	((VERIFY)) && verify "$B_OUT"
fi

# ---------------------------------------------------------------------------
# Part 3: the table and the targets.
# ---------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
pf() { if "$@"; then echo PASS; else echo FAIL; fi; }

{
	echo
	echo "recompress gzip -> zstd level $LEVEL; input $IN_UNCOMPRESSED bytes uncompressed" \
		"($(awk -v b="$IN_UNCOMPRESSED" 'BEGIN { printf "%.2f", b / 2^30 }') GiB), $IN_COMPRESSED bytes gzip," \
		"$(jq '.layers | length' "$IN_MANIFEST") layers; $(nproc) CPUs; best of $RUNS run(s);" \
		"page cache: $([[ $CACHE == warm ]] && echo "warm (input blobs read before each run)" || echo "cold (dropped before each run)");" \
		"load average at the start: $LOAD_START"
	printf '%-10s %8s %8s %13s %14s %11s %11s %12s\n' tool "wall s" "cpu s" "peak RSS MiB" "output bytes" "wall/skopeo" "wall/limit" "bytes/skopeo"
	tools=(layerslim skopeo limit bare decode)
	((SKIP_LAYERSLIM)) && tools=(skopeo limit bare decode)
	[[ -n $BASELINE ]] && tools+=(before)
	for t in "${tools[@]}"; do
		w=WALL_$t c=CPU_$t r=RSS_$t o=BYTES_$t
		printf '%-10s %8.2f %8.2f %13.1f %14d %11s %11s %12s\n' "$t" "${!w}" "${!c}" "$(awk -v k="${!r}" 'BEGIN { print k / 1024 }')" "${!o}" \
			"$(ratio "${!w}" "$WALL_skopeo")" "$(ratio "${!w}" "$WALL_limit")" "$(ratio "${!o}" "$BYTES_skopeo")"
	done
	echo
	if ((SKIP_LAYERSLIM)); then
		echo "targets: not checked (--skip-layerslim)"
	else
		# Issue 15's targets: one big layer, wall <= 0.8 x skopeo; the fat
		# image, wall <= 0.65 x skopeo and <= 1.0 x the limit; both, output
		# <= 1.005 x skopeo's and peak RSS <= 96 MiB + 24 MiB per CPU.
		k_skopeo=0.65
		[[ $INPUT == big ]] && k_skopeo=0.8
		max_skopeo=$(awk -v s="$WALL_skopeo" -v k="$k_skopeo" 'BEGIN { printf "%.2f", k * s }')
		max_limit=$(awk -v s="$WALL_limit" 'BEGIN { printf "%.2f", 1.0 * s }')
		max_bytes=$(awk -v s="$BYTES_skopeo" 'BEGIN { printf "%d", 1.005 * s }')
		max_rss=$((96 + 24 * $(nproc)))
		echo "targets:"
		printf '  %-38s %-34s %s\n' \
			"layerslim wall <= $k_skopeo x skopeo" "($WALL_layerslim s; max $max_skopeo s)" "$(pf le "$WALL_layerslim" "$max_skopeo")"
		[[ $INPUT == big ]] || printf '  %-38s %-34s %s\n' \
			"layerslim wall <= 1.0 x limit" "($WALL_layerslim s; max $max_limit s)" "$(pf le "$WALL_layerslim" "$max_limit")"
		printf '  %-38s %-34s %s\n' \
			"layerslim peak RSS <= $max_rss MiB" "($(awk -v k="$RSS_layerslim" 'BEGIN { printf "%.1f", k / 1024 }') MiB)" "$(pf le "$RSS_layerslim" $((max_rss * 1024)))" \
			"layerslim output <= 1.005 x skopeo's" "($BYTES_layerslim; max $max_bytes)" "$(pf le "$BYTES_layerslim" "$max_bytes")" \
			"layerslim cpu s (for the record)" "($CPU_layerslim s; skopeo $CPU_skopeo s)" ""
	fi
} | tee "$RESULTS"
