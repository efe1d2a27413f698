#!/usr/bin/env bash
# Test services for layerslim's integration tests: a real CNCF distribution
# registry and a containerd daemon, both private to one state directory.
#
# Run it:
#   eval "$(.ci/services.sh start)"   # starts both, prints `export ...` lines
#   go test -count=1 -tags integration ./...
#   .ci/services.sh stop              # stops both, removes $LAYERSLIM_SVC_DIR
#   .ci/services.sh env [DIR]         # prints the export lines again
#
# Or source it and use the functions, which set the variables in your shell:
#   source .ci/services.sh
#   layerslim_services_start
#   layerslim_services_stop
#
# Variables exported by start:
#   LAYERSLIM_TEST_REGISTRY               127.0.0.1:PORT (plain HTTP)
#   LAYERSLIM_TEST_REGISTRY_DIR           the registry's filesystem storage root
#   LAYERSLIM_TEST_CONTAINERD_SOCK        containerd's gRPC socket
#   LAYERSLIM_TEST_CONTAINERD_NAMESPACE   layerslim-test
#   LAYERSLIM_TEST_CONTAINERD_SNAPSHOTTER overlayfs, or native where overlay mounts fail
#   LAYERSLIM_SVC_DIR                     the state directory (pids, logs, configs, data)
#
# Knobs (environment): LAYERSLIM_SVC_DIR (state directory to create; default a
# new mktemp dir), LAYERSLIM_REGISTRY_BIN (registry binary), LAYERSLIM_REGISTRY_FROM_SOURCE=1
# (go install the distribution registry even where Debian's is installed), LAYERSLIM_SKIP_CONTAINERD=1,
# LAYERSLIM_CONTAINERD_SNAPSHOTTER (force a snapshotter).
#
# Everything here runs as root (containerd needs it). Only processes whose pids
# this script recorded are ever signalled.

# The distribution release built with `go install` when no registry binary is installed.
LAYERSLIM_REGISTRY_MODULE="${LAYERSLIM_REGISTRY_MODULE:-github.com/distribution/distribution/v3/cmd/registry@v3.1.2}"

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
	# Sourced: define functions only; never change the caller's shell options.
	_LAYERSLIM_SERVICES_SH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
	layerslim_services_start() {
		local out
		out="$(bash "$_LAYERSLIM_SERVICES_SH" start "$@")" || return
		eval "$out"
		printf '%s\n' "$out" >&2
	}
	layerslim_services_stop() {
		bash "$_LAYERSLIM_SERVICES_SH" stop "$@" || return
		unset LAYERSLIM_TEST_REGISTRY LAYERSLIM_TEST_REGISTRY_DIR LAYERSLIM_TEST_CONTAINERD_SOCK \
			LAYERSLIM_TEST_CONTAINERD_NAMESPACE LAYERSLIM_TEST_CONTAINERD_SNAPSHOTTER LAYERSLIM_SVC_DIR
	}
	return 0
fi

set -euo pipefail
export PATH="$PATH:/usr/local/go/bin:/usr/local/sbin:/usr/sbin:/sbin"

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# pid_alive PIDFILE: the recorded process still runs.
pid_alive() {
	local pid
	[[ -s "$1" ]] || return 1
	pid="$(<"$1")"
	kill -0 "$pid" 2>/dev/null
}

# stop_pid NAME PIDFILE: TERM the recorded process, KILL it after 10 s.
stop_pid() {
	local name="$1" pidfile="$2" pid i
	[[ -s "$pidfile" ]] || return 0
	pid="$(<"$pidfile")"
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$pidfile"
}

# port_in_use PORT: something accepts connections on 127.0.0.1:PORT.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
	local p i
	for ((i = 0; i < 50; i++)); do
		p=$((20000 + RANDOM % 30000))
		port_in_use "$p" || { echo "$p"; return 0; }
	done
	die "no free port found"
}

find_registry_bin() {
	local b gobin
	if [[ -n "${LAYERSLIM_REGISTRY_BIN:-}" ]]; then
		echo "$LAYERSLIM_REGISTRY_BIN"
		return
	fi
	if [[ "${LAYERSLIM_REGISTRY_FROM_SOURCE:-}" != 1 ]]; then
		for b in /usr/bin/docker-registry "$(command -v docker-registry || true)"; do
			[[ -n "$b" && -x "$b" ]] && { echo "$b"; return; }
		done
	fi
	gobin="$(go env GOPATH)/bin"
	if [[ ! -x "$gobin/registry" ]]; then
		log "no docker-registry binary; go install $LAYERSLIM_REGISTRY_MODULE"
		(cd / && GOBIN="$gobin" GOFLAGS= GOWORK=off go install "$LAYERSLIM_REGISTRY_MODULE") >&2
	fi
	echo "$gobin/registry"
}

start_registry() {
	local dir="$SVC/registry" bin port attempt i
	mkdir -p "$dir/storage"
	bin="$(find_registry_bin)"
	for ((attempt = 0; attempt < 5; attempt++)); do
		port="$(free_port)"
		cat >"$dir/config.yml" <<-EOF
			version: 0.1
			log:
			  level: warn
			  formatter: text
			  accesslog:
			    disabled: true
			storage:
			  filesystem:
			    rootdirectory: $dir/storage
			  delete:
			    enabled: true
			  maintenance:
			    uploadpurging:
			      enabled: false
			http:
			  addr: 127.0.0.1:$port
			  headers:
			    X-Content-Type-Options: [nosniff]
		EOF
		# OTEL_*: distribution v3 otherwise exports traces to localhost:4318.
		OTEL_TRACES_EXPORTER=none OTEL_METRICS_EXPORTER=none OTEL_SDK_DISABLED=true \
			nohup "$bin" serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null &
		echo $! >"$SVC/registry.pid"
		for ((i = 0; i < 300; i++)); do
			if curl -sf -o /dev/null "http://127.0.0.1:$port/v2/"; then
				REGISTRY_ADDR="127.0.0.1:$port"
				REGISTRY_DIR="$dir/storage"
				log "registry $("$bin" --version 2>/dev/null | head -n1 || true) on $REGISTRY_ADDR (pid $(<"$SVC/registry.pid"))"
				return 0
			fi
			pid_alive "$SVC/registry.pid" || break
			sleep 0.1
		done
		log "registry did not come up on port $port; log:"
		tail -n 20 "$dir/registry.log" >&2 || true
		stop_pid registry "$SVC/registry.pid"
	done
	die "registry failed to start"
}

# overlay_works DIR: an overlay mount succeeds with its dirs on DIR's filesystem.
overlay_works() {
	local t="$1/overlay-probe" ok=1
	mkdir -p "$t/lower" "$t/upper" "$t/work" "$t/merged"
	echo probe >"$t/lower/file"
	if mount -t overlay overlay -o "lowerdir=$t/lower,upperdir=$t/upper,workdir=$t/work" "$t/merged" 2>/dev/null; then
		[[ "$(cat "$t/merged/file" 2>/dev/null)" == probe ]] && ok=0
		umount "$t/merged" 2>/dev/null || umount -l "$t/merged" 2>/dev/null || true
	fi
	rm -rf "$t"
	return "$ok"
}

ctr_() { ctr --address "$CONTAINERD_SOCK" "$@"; }

start_containerd() {
	local dir="$SVC/containerd" i
	mkdir -p "$dir/root" "$dir/state" "$dir/opt" "$dir/tmp"
	CONTAINERD_SOCK="$dir/containerd.sock"
	cat >"$dir/config.toml" <<-EOF
		version = 2
		root = "$dir/root"
		state = "$dir/state"
		temp = "$dir/tmp"
		disabled_plugins = [
		  "io.containerd.grpc.v1.cri",
		  "io.containerd.snapshotter.v1.aufs",
		  "io.containerd.snapshotter.v1.btrfs",
		  "io.containerd.snapshotter.v1.devmapper",
		  "io.containerd.snapshotter.v1.zfs",
		]

		[grpc]
		  address = "$CONTAINERD_SOCK"

		[ttrpc]
		  address = "$CONTAINERD_SOCK.ttrpc"

		[debug]
		  level = "warn"

		[plugins]
		  [plugins."io.containerd.internal.v1.opt"]
		    path = "$dir/opt"
	EOF
	nohup containerd --config "$dir/config.toml" >>"$dir/containerd.log" 2>&1 </dev/null &
	echo $! >"$SVC/containerd.pid"
	for ((i = 0; i < 300; i++)); do
		if [[ -S "$CONTAINERD_SOCK" ]] && ctr_ version >/dev/null 2>&1; then
			break
		fi
		if ! pid_alive "$SVC/containerd.pid"; then
			tail -n 30 "$dir/containerd.log" >&2 || true
			die "containerd exited"
		fi
		sleep 0.1
	done
	ctr_ version >/dev/null 2>&1 || { tail -n 30 "$dir/containerd.log" >&2; die "containerd did not answer on $CONTAINERD_SOCK"; }

	if [[ -n "${LAYERSLIM_CONTAINERD_SNAPSHOTTER:-}" ]]; then
		SNAPSHOTTER="$LAYERSLIM_CONTAINERD_SNAPSHOTTER"
	elif overlay_works "$dir/root" &&
		ctr_ plugins ls 2>/dev/null | awk '$1 == "io.containerd.snapshotter.v1" && $2 == "overlayfs" { print $NF }' | grep -qx ok; then
		SNAPSHOTTER=overlayfs
	else
		log "overlay mounts fail here; using the native snapshotter"
		SNAPSHOTTER=native
	fi
	log "containerd $(containerd --version | awk '{print $3}') on $CONTAINERD_SOCK (pid $(<"$SVC/containerd.pid"), snapshotter $SNAPSHOTTER)"
}

write_env() {
	{
		printf 'export LAYERSLIM_SVC_DIR=%q\n' "$SVC"
		printf 'export LAYERSLIM_TEST_REGISTRY=%q\n' "$REGISTRY_ADDR"
		printf 'export LAYERSLIM_TEST_REGISTRY_DIR=%q\n' "$REGISTRY_DIR"
		if [[ -n "${CONTAINERD_SOCK:-}" ]]; then
			printf 'export LAYERSLIM_TEST_CONTAINERD_SOCK=%q\n' "$CONTAINERD_SOCK"
			printf 'export LAYERSLIM_TEST_CONTAINERD_NAMESPACE=%q\n' layerslim-test
			printf 'export LAYERSLIM_TEST_CONTAINERD_SNAPSHOTTER=%q\n' "$SNAPSHOTTER"
		fi
	} >"$SVC/env"
}

cmd_start() {
	[[ "$(id -u)" == 0 ]] || log "warning: not root; containerd will not start"
	if [[ -n "${LAYERSLIM_SVC_DIR:-}" ]]; then
		SVC="$LAYERSLIM_SVC_DIR"
		[[ ! -e "$SVC/env" ]] || die "$SVC already holds running services (stop them first)"
		mkdir -p "$SVC"
	else
		SVC="$(mktemp -d "${TMPDIR:-/tmp}/layerslim-svc.XXXXXX")"
	fi
	SVC="$(cd "$SVC" && pwd)"
	# Undo a half-done start.
	trap 'rc=$?; if ((rc != 0)); then cmd_stop "$SVC" >&2 || true; fi' EXIT

	start_registry
	if [[ "${LAYERSLIM_SKIP_CONTAINERD:-}" != 1 ]]; then
		start_containerd
	fi
	write_env
	trap - EXIT
	cat "$SVC/env"
}

# clean_containerd: kill and delete every task and container our containerd knows.
clean_containerd() {
	local ns id
	[[ -S "$CONTAINERD_SOCK" ]] || return 0
	ctr_ version >/dev/null 2>&1 || return 0
	for ns in $(ctr_ namespaces ls -q 2>/dev/null); do
		for id in $(ctr_ -n "$ns" tasks ls -q 2>/dev/null); do
			ctr_ -n "$ns" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
		done
		for id in $(ctr_ -n "$ns" tasks ls -q 2>/dev/null); do
			for _ in 1 2 3 4 5 6 7 8 9 10; do
				ctr_ -n "$ns" tasks delete -f "$id" >/dev/null 2>&1 && break
				sleep 0.2
			done
		done
		for id in $(ctr_ -n "$ns" containers ls -q 2>/dev/null); do
			ctr_ -n "$ns" containers delete "$id" >/dev/null 2>&1 || true
		done
	done
}

# unmount_under DIR: lazily unmount every mount point below DIR, deepest first.
unmount_under() {
	local dir="$1" mp
	[[ -r /proc/self/mountinfo ]] || return 0
	awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r mp; do
		umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "cannot unmount $mp"
	done
}

cmd_stop() {
	SVC="${1:-${LAYERSLIM_SVC_DIR:-}}"
	[[ -n "$SVC" ]] || die "stop: no state dir (give it as an argument or set LAYERSLIM_SVC_DIR)"
	[[ -d "$SVC" ]] || { log "stop: $SVC is gone already"; return 0; }
	CONTAINERD_SOCK="$SVC/containerd/containerd.sock"
	if pid_alive "$SVC/containerd.pid"; then
		clean_containerd
	fi
	stop_pid containerd "$SVC/containerd.pid"
	stop_pid registry "$SVC/registry.pid"
	unmount_under "$SVC"
	rm -rf --one-file-system "$SVC"
	log "stopped; removed $SVC"
}

cmd_env() {
	SVC="${1:-${LAYERSLIM_SVC_DIR:-}}"
	[[ -n "$SVC" && -r "$SVC/env" ]] || die "env: no running services found (give the state dir)"
	cat "$SVC/env"
}

case "${1:-}" in
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
env) shift; cmd_env "$@" ;;
*)
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
	exit 2
	;;
esac
