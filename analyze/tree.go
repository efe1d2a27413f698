package analyze

import (
	"container/heap"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// DefaultTreeNodes is how many nodes the trees of one image hold when
// Options.Tree is set and Options.TreeNodes is 0.
const DefaultTreeNodes = 4000

// Node is one directory or file of a layer's tree, or an aggregate of
// small ones: where the layer's bytes are, and what becomes of them. Its
// byte counts include its children's. A layer's tree is rooted at a node
// named "/".
type Node struct {
	// Name is the last path element; an aggregate of small entries is
	// named "(N more)".
	Name string `json:"name"`
	// Kept is the content a rewrite keeps (stripped ELF files count
	// their size less their debug bytes), Debug the debug bytes stripping
	// removes, Drop what the drop rules remove, Shadowed what later layers
	// (or later entries of the layer) hide.
	Kept     int64 `json:"kept,omitempty"`
	Debug    int64 `json:"debug,omitempty"`
	Drop     int64 `json:"drop,omitempty"`
	Shadowed int64 `json:"shadowed,omitempty"`
	// Files counts the files the node stands for.
	Files int `json:"files"`
	// Why is the reason of a single dropped or shadowed file, as Item.Why.
	Why string `json:"why,omitempty"`
	// Children are the node's entries, largest first. A directory without
	// children stands for all it holds.
	Children []*Node `json:"children,omitempty"`
}

// Bytes is the node's total content size.
func (n *Node) Bytes() int64 { return n.Kept + n.Debug + n.Drop + n.Shadowed }

func (n *Node) addCounts(o *Node) {
	n.Kept += o.Kept
	n.Debug += o.Debug
	n.Drop += o.Drop
	n.Shadowed += o.Shadowed
	n.Files += o.Files
}

// treeBuilder gathers the files of one layer by directory.
type treeBuilder struct {
	root *Node
	kids map[*Node]map[string]*Node
}

func newTreeBuilder() *treeBuilder {
	return &treeBuilder{root: &Node{Name: "/"}, kids: map[*Node]map[string]*Node{}}
}

// add counts a file at p (a clean path, no leading slash).
func (b *treeBuilder) add(p string, leaf Node) {
	if leaf.Bytes() == 0 {
		return
	}
	leaf.Files = 1
	n := b.root
	n.addCounts(&leaf)
	for {
		elem, rest, more := strings.Cut(p, "/")
		m := b.kids[n]
		if m == nil {
			m = map[string]*Node{}
			b.kids[n] = m
		}
		c := m[elem]
		if c == nil {
			c = &Node{Name: elem}
			m[elem] = c
		}
		c.addCounts(&leaf)
		if !more {
			if c.Why == "" && len(b.kids[c]) == 0 {
				c.Why = leaf.Why
			}
			return
		}
		c.Why = "" // a directory
		n, p = c, rest
	}
}

// tree returns the gathered tree cut to at most budget nodes: directories are
// opened largest first, and the entries of an opened directory that do not
// fit are summed into one "(N more)" node.
func (b *treeBuilder) tree(budget int) *Node {
	children := func(n *Node) []*Node {
		var out []*Node
		for _, c := range b.kids[n] {
			out = append(out, c)
		}
		sortNodes(out)
		return out
	}
	return cut(b.root, budget, children)
}

// Prune returns a copy of the tree rooted at n with at most budget nodes,
// chosen as the analysis chooses them: directories opened largest first,
// what does not fit summed into "(N more)" nodes.
func (n *Node) Prune(budget int) *Node {
	return cut(n, budget, func(n *Node) []*Node { return n.Children })
}

func sortNodes(ns []*Node) {
	slices.SortFunc(ns, func(a, b *Node) int {
		if a.Bytes() != b.Bytes() {
			if a.Bytes() > b.Bytes() {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// cut copies the tree from root, opening directories largest first while
// the copy has fewer than budget nodes.
func cut(root *Node, budget int, children func(*Node) []*Node) *Node {
	budget = max(budget, 1)
	cp := func(n *Node) *Node {
		c := *n
		c.Children = nil
		return &c
	}
	out := cp(root)
	count := 1
	q := &nodeQueue{{src: root, dst: out}}
	for q.Len() > 0 && count < budget {
		it := heap.Pop(q).(queued)
		kids := children(it.src)
		if len(kids) == 0 {
			continue
		}
		room := budget - count
		if room < 2 && len(kids) > 1 {
			break // not even one entry and the rest
		}
		keep := kids
		var rest []*Node
		if len(kids) > room {
			keep, rest = kids[:room-1], kids[room-1:]
		}
		for _, k := range keep {
			d := cp(k)
			it.dst.Children = append(it.dst.Children, d)
			count++
			heap.Push(q, queued{src: k, dst: d})
		}
		if len(rest) > 0 {
			more := &Node{Name: fmt.Sprintf("(%d more)", len(rest))}
			for _, r := range rest {
				more.addCounts(r)
			}
			it.dst.Children = append(it.dst.Children, more)
			count++
		}
	}
	return out
}

type queued struct{ src, dst *Node }

// nodeQueue pops the largest directory first (ties by name, for a result
// that does not depend on map order).
type nodeQueue []queued

func (q nodeQueue) Len() int { return len(q) }
func (q nodeQueue) Less(i, j int) bool {
	a, b := q[i].src, q[j].src
	if a.Bytes() != b.Bytes() {
		return a.Bytes() > b.Bytes()
	}
	return a.Name < b.Name
}
func (q nodeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *nodeQueue) Push(x any)   { *q = append(*q, x.(queued)) }
func (q *nodeQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}

// addRec counts a settled entry of the walk; b may be nil.
func (b *treeBuilder) addRec(r *entryRec) {
	if b == nil {
		return
	}
	var n Node
	switch r.class {
	case shadowed:
		n.Shadowed, n.Why = r.size, shadowWhy(r)
	case dropped:
		n.Drop, n.Why = r.size, dropWhy(r.reason)
	case kept:
		n.Kept, n.Debug = r.size-r.debug, r.debug
	}
	b.add(r.path, n)
}

// treeBudgets shares total nodes among layers by their compressed sizes,
// at least 16 each.
func treeBudgets(layers []v1.Descriptor, total int) []int {
	if total <= 0 {
		total = DefaultTreeNodes
	}
	var sum int64
	for _, d := range layers {
		sum += max(d.Size, 1)
	}
	out := make([]int, len(layers))
	for i, d := range layers {
		out[i] = max(16, int(int64(total)*max(d.Size, 1)/max(sum, 1)))
	}
	return out
}
