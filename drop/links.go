package drop

// LinkReason starts the reason of a hardlink dropped with its target:
// LinkReason + the target's clean path.
const LinkReason = "link to dropped "

// Links is the hardlink rule of rewrite.Drop for one layer: a hardlink
// goes with its target when m drops the target, or when the target is a
// link dropped that way earlier in the layer or, given in lower, in a
// lower layer. Make one per layer; it remembers the links it dropped.
type Links struct {
	m       *Matcher
	lower   map[string]bool // read only
	dropped map[string]bool
}

// NewLinks is the rule for a layer whose lower layers dropped the links
// in lower (nil: none known). A nil m drops no target by its name.
func NewLinks(m *Matcher, lower map[string]bool) *Links {
	return &Links{m: m, lower: lower}
}

// Match reports whether the hardlink name → target (both clean) goes with
// its target, and the reason. Match depends on the path alone, so a
// target m drops was dropped wherever it was.
func (l *Links) Match(name, target string) (reason string, drop bool) {
	drop = l.lower[target] || l.dropped[target]
	if !drop && l.m != nil {
		_, drop = l.m.Match(target, false)
	}
	if !drop {
		return "", false
	}
	if l.dropped == nil {
		l.dropped = map[string]bool{}
	}
	l.dropped[name] = true
	return LinkReason + target, true
}
