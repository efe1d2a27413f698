/*
Copyright 2011 The Perkeep Authors

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

     http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package zstdchunked

// rollSum is the rolling checksum of bup (and of containers/storage's
// zstd:chunked compressor, pkg/chunked/compressor/rollsum.go, which has it
// from Perkeep): a sum over the last 64 bytes whose low bits pick
// content-defined split points.
type rollSum struct {
	s1, s2 uint32
	window [rollWindow]uint8
	wofs   int
}

const (
	rollWindow = 64 // a power of 2
	charOffset = 31
)

func newRollSum() rollSum {
	return rollSum{s1: rollWindow * charOffset, s2: rollWindow * (rollWindow - 1) * charOffset}
}

// roll adds ch to the sum.
func (rs *rollSum) roll(ch byte) {
	wp := &rs.window[rs.wofs]
	drop, add := uint32(*wp), uint32(ch)
	rs.s1 += add - drop
	rs.s2 += rs.s1 - rollWindow*(drop+charOffset)
	*wp = ch
	rs.wofs = (rs.wofs + 1) & (rollWindow - 1)
}

// onSplit reports whether the low bits of the sum under mask are all set.
func (rs *rollSum) onSplit(mask uint32) bool { return rs.s2&mask == mask }
