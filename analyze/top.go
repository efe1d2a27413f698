package analyze

import (
	"container/heap"
	"slices"
)

// topItems keeps the n largest items seen, in bounded memory.
type topItems struct {
	n int
	h itemHeap // a min-heap: the smallest kept item first
}

func (t *topItems) add(it Item) {
	if it.Bytes <= 0 || t.n <= 0 {
		return
	}
	if len(t.h) < t.n {
		heap.Push(&t.h, it)
		return
	}
	if smaller(t.h[0], it) {
		t.h[0] = it
		heap.Fix(&t.h, 0)
	}
}

// sorted returns the kept items, largest first.
func (t *topItems) sorted() []Item {
	out := slices.Clone([]Item(t.h))
	slices.SortFunc(out, func(a, b Item) int {
		switch {
		case smaller(b, a):
			return -1
		case smaller(a, b):
			return 1
		}
		return 0
	})
	if out == nil {
		out = []Item{}
	}
	return out
}

// smaller orders items by size, and ties by layer (upper first), path and
// reason, so the result does not depend on the order items came in.
func smaller(a, b Item) bool {
	if a.Bytes != b.Bytes {
		return a.Bytes < b.Bytes
	}
	if a.Layer != b.Layer {
		return a.Layer < b.Layer
	}
	if a.Path != b.Path {
		return a.Path > b.Path
	}
	return a.Why > b.Why
}

type itemHeap []Item

func (h itemHeap) Len() int           { return len(h) }
func (h itemHeap) Less(i, j int) bool { return smaller(h[i], h[j]) }
func (h itemHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)        { *h = append(*h, x.(Item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
