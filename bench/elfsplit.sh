#!/usr/bin/env bash
# Benchmark: the pure-Go ELF splitter (package elf, driven by
# elf/internal/cmd/elfsplit) against binutils on large unstripped binaries.
#
#   bash bench/elfsplit.sh            # build inputs (cached), run, print the table
#   RUNS=5 bash bench/elfsplit.sh     # more repetitions (the best time is reported)
#   BENCH_DIR=/some/dir bash bench/elfsplit.sh
#
# Inputs (built once into $BENCH_DIR/in, reused afterwards):
#   go-service   a Go program importing net/http, crypto/tls, encoding/json,
#                database/sql, text/template and more (default go build: DWARF, compressed)
#   go-cmd-go    the go command itself, built from $(go env GOROOT) with DWARF
#   cxx-gen      a generated C++ program (templates, std::map/string/vector), g++ -g -O2
#   libgen.so    a generated C shared library (thousands of functions and struct types), gcc -g -O2 -fPIC
#
# For each input and mode the script times
#   binutils:  objcopy --only-keep-debug IN DBG ; strip --strip-debug|--strip-unneeded -o OUT IN
#   +link:     the same, then objcopy --add-gnu-debuglink=DBG OUT (what a debug-image pipeline needs)
#   elfsplit:  one call writing both files (the stripped one with .gnu_debuglink)
# and prints wall times (best of $RUNS) and output sizes. The targets are a
# stripped size within 1% (or 4 KiB) of strip's and a time no worse than
# binutils'.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BENCH_DIR=${BENCH_DIR:-/tmp/layerslim-elfsplit-bench}
RUNS=${RUNS:-3}
IN=$BENCH_DIR/in
OUT=$BENCH_DIR/out
mkdir -p "$IN" "$OUT"

for t in go gcc g++ strip objcopy awk; do
	command -v "$t" >/dev/null || { echo "elfsplit.sh: $t is not installed" >&2; exit 1; }
done

log() { printf '>>> %s\n' "$*" >&2; }

# --- inputs -----------------------------------------------------------------

build_go_service() {
	local d=$BENCH_DIR/src/go-service
	mkdir -p "$d"
	cat >"$d/go.mod" <<'EOF'
module benchsvc

go 1.22
EOF
	cat >"$d/main.go" <<'EOF'
// A service-shaped program: HTTP + TLS + JSON + SQL + templates, so that a
// good part of the standard library ends up in the binary.
package main

import (
	"archive/zip"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"go/parser"
	"go/token"
	"html/template"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/smtp"
	"os"
	"regexp"
	"strings"
	ttemplate "text/template"
	"time"
)

type item struct {
	ID    int       `json:"id" xml:"id"`
	Name  string    `json:"name" xml:"name"`
	Added time.Time `json:"added" xml:"added"`
}

var page = template.Must(template.New("p").Parse(`<ul>{{range .}}<li>{{.Name}}</li>{{end}}</ul>`))
var text = ttemplate.Must(ttemplate.New("t").Parse(`{{range .}}{{.ID}} {{.Name}}
{{end}}`))

func handler(db *sql.DB) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		items := []item{{1, "a", time.Now()}, {2, "b", time.Now()}}
		if db != nil {
			_ = db.PingContext(r.Context())
		}
		switch r.URL.Query().Get("f") {
		case "json":
			_ = json.NewEncoder(w).Encode(items)
		case "xml":
			_ = xml.NewEncoder(w).Encode(items)
		case "text":
			_ = text.Execute(w, items)
		default:
			_ = page.Execute(w, items)
		}
	}
}

func main() {
	addr := flag.String("addr", "", "listen address; empty: print and exit")
	flag.Parse()
	pool := x509.NewCertPool()
	srv := &http.Server{Addr: *addr, Handler: handler(nil), TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	_ = httputil.NewSingleHostReverseProxy
	_ = smtp.PlainAuth
	_ = zip.NewWriter
	_ = gzip.NewWriter
	_ = png.Decode
	_, _ = parser.ParseExpr("1+2")
	_ = token.NewFileSet()
	_ = regexp.MustCompile(`^[a-z]+$`).MatchString("abc")
	slog.Info("starting", "addr", *addr)
	if *addr == "" {
		fmt.Println(strings.ToUpper("ok"), srv.Addr == "")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	<-ctx.Done()
	os.Exit(0)
}
EOF
	(cd "$d" && GOWORK=off GOFLAGS= CGO_ENABLED=0 go build -o "$IN/go-service" .)
}

build_go_cmd() {
	GOWORK=off GOFLAGS= CGO_ENABLED=0 go build -o "$IN/go-cmd-go" cmd/go
}

build_cxx() {
	local d=$BENCH_DIR/src/cxx
	mkdir -p "$d"
	awk -v N="${CXX_CLASSES:-250}" 'BEGIN {
		print "#include <algorithm>\n#include <functional>\n#include <iostream>\n#include <map>\n#include <memory>\n#include <numeric>\n#include <sstream>\n#include <string>\n#include <vector>"
		print "namespace gen {"
		for (i = 0; i < N; i++) {
			printf "template <typename T> struct Box%d {\n", i
			printf "  std::vector<T> items; std::map<std::string, T> index;\n"
			printf "  void add(const std::string& k, T v) { items.push_back(v); index[k + \"_%d\"] = v; }\n", i
			printf "  T total() const { return std::accumulate(items.begin(), items.end(), T{}); }\n"
			printf "  std::vector<std::string> keys() const { std::vector<std::string> r; for (auto& kv : index) r.push_back(kv.first); std::sort(r.begin(), r.end()); return r; }\n};\n"
			printf "struct Svc%d { Box%d<int> a; Box%d<double> b; std::function<int(int)> f = [](int x) { return x * %d; };\n", i, i, i, i + 1
			printf "  std::string run(int n) { std::ostringstream os; for (int k = 0; k < n; k++) { a.add(std::to_string(k), f(k)); b.add(std::to_string(k * %d), k / 2.0); }\n", i + 3
			printf "    os << \"svc%d \" << a.total() << \" \" << b.total() << \" \" << a.keys().size(); return os.str(); } };\n", i
		}
		print "}"
		print "int main() {\n  size_t t = 0;"
		for (i = 0; i < N; i++) printf "  t += gen::Svc%d().run(3).size();\n", i
		print "  std::cout << t << std::endl;\n}"
	}' >"$d/gen.cc"
	g++ -g -O2 -o "$IN/cxx-gen" "$d/gen.cc"
}

build_lib() {
	local d=$BENCH_DIR/src/lib
	mkdir -p "$d"
	awk -v N="${LIB_FUNCS:-4000}" 'BEGIN {
		print "#include <stdio.h>\n#include <string.h>\n#include <stdlib.h>"
		for (i = 0; i < N; i++) {
			printf "struct rec%d { int a%d; double b; char name[32]; struct rec%d *next; long tag[%d]; };\n", i, i, i, i % 7 + 1
			printf "int fn%d(struct rec%d *r, int x) {\n  int s = 0;\n  for (int k = 0; k < x; k++) {\n    switch ((k + %d) %% 5) {\n", i, i, i
			printf "    case 0: s += r->a%d * k; break;\n    case 1: s ^= (int)(r->b * k); break;\n    case 2: s += r->next ? r->next->a%d : %d; break;\n", i, i, i
			printf "    case 3: s -= (int)r->tag[k %% %d]; break;\n    default: s += (int)strlen(r->name); }\n  }\n", i % 7 + 1
			printf "  snprintf(r->name, sizeof r->name, \"fn%d %%d\", s);\n  return s;\n}\n", i
		}
	}' >"$d/lib.c"
	gcc -g -O2 -fPIC -shared -o "$IN/libgen.so" "$d/lib.c"
}

build() {
	local name=$1 fn=$2
	if [[ -s $IN/$name ]]; then
		return
	fi
	log "building $name"
	local t0=$SECONDS
	"$fn"
	log "built $name in $((SECONDS - t0))s ($(stat -c %s "$IN/$name") bytes)"
}

build go-service build_go_service
build go-cmd-go build_go_cmd
build cxx-gen build_cxx
build libgen.so build_lib

log "building elfsplit"
(cd "$ROOT" && GOWORK=off go build -o "$BENCH_DIR/elfsplit" ./elf/internal/cmd/elfsplit)
ELFSPLIT=$BENCH_DIR/elfsplit

# --- timing -----------------------------------------------------------------

now() { date +%s%N; }

# best_of CMD...: runs the command $RUNS times, prints the best wall time in ms.
best_of() {
	local best="" i t0 t1 ms
	for ((i = 0; i < RUNS; i++)); do
		sync
		t0=$(now)
		"$@" >/dev/null
		t1=$(now)
		ms=$(((t1 - t0) / 1000000))
		if [[ -z $best || $ms -lt $best ]]; then best=$ms; fi
	done
	echo "$best"
}

binutils_split() { # IN DBG OUT STRIPFLAG
	objcopy --only-keep-debug "$1" "$2"
	strip "$4" -o "$3" "$1"
}

binutils_split_link() { # IN DBG OUT STRIPFLAG
	binutils_split "$@"
	objcopy --add-gnu-debuglink="$2" "$3"
}

size() { stat -c %s "$1"; }

printf '\n%-11s %-8s %11s | %9s %9s %9s | %11s %11s %7s | %10s %10s\n' \
	input mode "in bytes" "binutils" "+link" "elfsplit" "strip out" "our out" "diff" "objcopy dbg" "our dbg"
printf '%s\n' "$(printf -- '-%.0s' {1..126})"
fail=0
for name in go-service go-cmd-go cxx-gen libgen.so; do
	in=$IN/$name
	for mode in debug unneeded; do
		flag=--strip-$mode
		o=$OUT/$name.$mode
		tb=$(best_of binutils_split "$in" "$o.ref.debug" "$o.ref" "$flag")
		tl=$(best_of binutils_split_link "$in" "$o.ref.debug" "$o.reflink" "$flag")
		te=$(best_of "$ELFSPLIT" -mode "$mode" "$in" "$o.ours" "$o.ours.debug")
		rs=$(size "$o.ref")
		os=$(size "$o.ours")
		diff=$(awk -v a="$os" -v b="$rs" 'BEGIN { printf "%+.2f%%", (a - b) * 100 / b }')
		printf '%-11s %-8s %11d | %7dms %7dms %7dms | %11d %11d %7s | %10d %10d\n' \
			"$name" "$mode" "$(size "$in")" "$tb" "$tl" "$te" "$rs" "$os" "$diff" "$(size "$o.ref.debug")" "$(size "$o.ours.debug")"
		limit=$((rs / 100 > 4096 ? rs / 100 : 4096))
		if ((os > rs + limit)); then
			echo "    !! stripped size exceeds strip's by more than 1% / 4 KiB" >&2
			fail=1
		fi
		if ((te > tb)); then
			echo "    !! slower than binutils" >&2
		fi
	done
done
echo
echo "binutils = objcopy --only-keep-debug + strip --strip-MODE; +link = then objcopy --add-gnu-debuglink;"
echo "elfsplit = one pass writing both files, .gnu_debuglink included. Best of $RUNS runs, wall time."
exit $fail
