//go:build unix

package refio

import "syscall"

const openNonblock = syscall.O_NONBLOCK
