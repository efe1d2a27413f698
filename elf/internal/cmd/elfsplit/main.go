// Command elfsplit splits one ELF file into a stripped file and a debug
// file with package elf. It exists for bench/elfsplit.sh and for manual
// checks; layerslim itself calls the package.
//
//	elfsplit [-mode unneeded|debug|all] [-name NAME] IN STRIPPED DEBUG
//	elfsplit -archive IN OUT
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/layerslim/layerslim/elf"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "elfsplit:", err)
		if errors.Is(err, elf.ErrUnchanged) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}

func run() error {
	modeFlag := flag.String("mode", "unneeded", "strip mode: unneeded, debug, all or none")
	name := flag.String("name", "", "file name recorded in .gnu_debuglink (default: base name of DEBUG)")
	archive := flag.Bool("archive", false, "strip a static archive: IN OUT")
	flag.Parse()
	mode, err := elf.ParseMode(*modeFlag)
	if err != nil {
		return err
	}
	args := flag.Args()
	if *archive && len(args) != 2 || !*archive && len(args) != 3 {
		flag.Usage()
		os.Exit(2)
	}
	in, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if *archive {
		return writeFile(args[1], func(w *os.File) error {
			_, err := elf.SplitArchive(in, st.Size(), w)
			return err
		})
	}
	if *name == "" {
		*name = filepath.Base(args[2])
	}
	// The debug file is written first, so a failure removes both.
	dbg, err := os.Create(args[2])
	if err != nil {
		return err
	}
	defer dbg.Close()
	err = writeFile(args[1], func(w *os.File) error {
		_, err := elf.Split(in, st.Size(), mode, *name, w, dbg)
		return err
	})
	if err == nil {
		err = dbg.Close()
	}
	if err != nil {
		os.Remove(args[2])
		return err
	}
	return nil
}

// writeFile creates path with the input's mode bits, calls fn and removes
// path again when fn fails.
func writeFile(path string, fn func(*os.File) error) error {
	w, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	err = fn(w)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}
