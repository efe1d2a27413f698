//go:build !unix

package refio

const openNonblock = 0
