package cli

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/layerslim/layerslim/internal/debugserve"
	"github.com/layerslim/layerslim/internal/imageref"
)

// debuginfodPort is elfutils debuginfod's default port.
const debuginfodPort = ":8002"

func newDebugServe() *cobra.Command {
	var (
		insecure  bool
		listen    string
		cacheDir  string
		cacheSize string
		refresh   time.Duration
		suffix    string
	)
	cmd := &cobra.Command{
		Use:   "serve REF...",
		Short: "Answer the debuginfod HTTP API from debug images",
		Long: `serve answers debuginfod requests (GET and HEAD /buildid/ID/debuginfo,
/buildid/ID/executable; /metrics) for gdb, perf, systemd-coredump, valgrind
and profilers, from debug images made by rewrite. Each REF is

  HOST/REPO:TAG-debug, HOST/REPO@sha256:…, oci:DIR:TAG   a debug image or index
  HOST/REPO                every tag of the repository ending in --debug-suffix
  oci:DIR                  every such tag of the OCI layout

Repositories and layouts are listed again every --refresh, so new debug
images are served without a restart. The index (build-id → image, layer,
path, read from the debug layers' tar headers) and the files served are kept
under --cache-dir: a restart reads no layer again. The files and layer blobs
cached take at most --cache-size, the least recently used going first.

Clients find the server by DEBUGINFOD_URLS:

  export DEBUGINFOD_URLS=http://localhost:8002`,
		Example: `  layerslim debug serve registry.example/app registry.example/base:12-debug
  DEBUGINFOD_URLS=http://localhost:8002 gdb -batch -ex 'info line main' ./app`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("debug serve needs at least one REF")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			size, err := parseGateBytes(cacheSize)
			if err != nil || size <= 0 {
				return usagef("--cache-size %q: want a positive number of bytes, such as 1GiB", cacheSize)
			}
			if refresh < 0 {
				return usagef("--refresh must not be negative")
			}
			if refresh == 0 {
				refresh = -1 // never
			}
			var sources []debugserve.Source
			for _, a := range args {
				s, err := debugserve.ParseSource(a, insecure)
				if err != nil {
					return &UsageError{Err: fmt.Errorf("REF: %w", err)}
				}
				sources = append(sources, s)
			}
			if cacheDir == "" {
				d, err := os.UserCacheDir()
				if err != nil {
					return usagef("no --cache-dir and no user cache directory: %v", err)
				}
				cacheDir = filepath.Join(d, "layerslim", "debuginfod")
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			srv, err := debugserve.New(sources, debugserve.Options{
				CacheDir: cacheDir, CacheSize: size, Refresh: refresh, DebugSuffix: suffix, Logger: log,
				// Responses still being written get most of the time Main
				// gives a command after SIGINT, so Serve returns before Main exits.
				ShutdownTimeout: interruptGrace - 500*time.Millisecond,
				Registry:        registryOptions(cmd, imageref.Options{Insecure: insecure, UserAgent: "layerslim/" + Version}),
			})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listening on %s: %w", listen, err)
			}
			log.Info("serving debuginfod", "addr", "http://"+ln.Addr().String(), "cacheDir", cacheDir)
			return srv.Serve(cmd.Context(), ln)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&insecure, "insecure", false, "allow plain HTTP and unverified TLS to registries")
	f.StringVar(&listen, "listen", debuginfodPort, "address to listen on, HOST:PORT")
	f.StringVar(&cacheDir, "cache-dir", "", "directory of the index and the cached files (default: the user cache directory's layerslim/debuginfod)")
	f.StringVar(&cacheSize, "cache-size", "1GiB", "bytes of files and layer blobs cached at most, least recently used evicted first")
	f.DurationVar(&refresh, "refresh", debugserve.DefaultRefresh, "list repositories, layouts and tags again this often; 0 for never")
	f.StringVar(&suffix, "debug-suffix", debugserve.DefaultDebugSuffix, "tag suffix of the debug images served from a repository or a whole layout")
	return cmd
}
