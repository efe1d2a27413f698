package manifest

import (
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const timedConfig = `{"architecture":"amd64","os":"linux",` +
	`"rootfs":{"type":"layers","diff_ids":["sha256:1111111111111111111111111111111111111111111111111111111111111111","sha256:2222222222222222222222222222222222222222222222222222222222222222","sha256:3333333333333333333333333333333333333333333333333333333333333333"]},` +
	`"history":[{"created":"2024-01-01T00:00:00Z","created_by":"base"},` +
	`{"created":"2024-02-01T10:00:00.5+01:00","created_by":"step 2"},` +
	`{"created":"2024-02-01T09:30:00Z","created_by":"ENV X=1","empty_layer":true},` +
	`{"created":"2024-02-01T09:10:00Z","created_by":"step 3"}]}`

// Issue 11, item 3: the merged layer's history entry is its own (the one
// non-empty entry for it), created when the newest merged step was; the
// merged steps stay as empty_layer entries; a debug layer's entry takes the
// newest time of the history.
func TestBuildImageMergedHistory(t *testing.T) {
	b, err := BuildImage(Image{Source: src(), Config: []byte(timedConfig), Format: OCI,
		Layers:  []v1.Descriptor{{Digest: hash('a')}, {Digest: hash('b')}},
		DiffIDs: []v1.Hash{hash('1'), hash('4')},
		Merged:  []int{1, 2}, AddHistory: "layerslim: layers 2-3 merged into one", AddLayerHistory: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := v1.ParseConfigFile(strings.NewReader(string(b.Config)))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range cf.History {
		e := ""
		if h.EmptyLayer {
			e = " (empty)"
		}
		got = append(got, h.CreatedBy+e+" "+h.Created.UTC().Format("2006-01-02T15:04:05.0"))
	}
	want := []string{
		"base 2024-01-01T00:00:00.0",
		"step 2 (empty) 2024-02-01T09:00:00.5",
		"ENV X=1 (empty) 2024-02-01T09:30:00.0",
		"step 3 (empty) 2024-02-01T09:10:00.0",
		"layerslim: layers 2-3 merged into one 2024-02-01T09:10:00.0",
		"debug 2024-02-01T09:30:00.0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The times are the input's, byte for byte.
	var doc struct{ History []map[string]json.RawMessage }
	json.Unmarshal(b.Config, &doc)
	if at := string(doc.History[4]["created"]); at != `"2024-02-01T09:10:00Z"` {
		t.Errorf("merged entry created %s", at)
	}
}
