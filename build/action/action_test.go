package action

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/layerslim/layerslim/internal/testenv"
)

type action struct {
	Inputs map[string]struct {
		Required bool
		Default  string
	}
	Outputs map[string]struct{ Value string }
	Runs    struct {
		Using string
		Steps []step
	}
}

type step struct {
	Name  string
	ID    string
	If    string
	Uses  string
	Shell string
	Env   map[string]string
	Run   string
}

// runner runs action.yml's steps.
type runner struct {
	t       *testing.T
	root    string // the repository: GITHUB_ACTION_PATH
	temp    string // RUNNER_TEMP
	summary string // GITHUB_STEP_SUMMARY
	path    []string
	outputs map[string]map[string]string // step id → outputs
}

type result struct {
	failed   string // the step that failed, "" when all passed
	exitCode int
	outputs  map[string]string // the action's
	summary  string
	ran      []string
}

func load(t *testing.T) action {
	t.Helper()
	b, err := os.ReadFile("../../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var a action
	if err := yaml.Unmarshal(b, &a); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	if a.Runs.Using != "composite" {
		t.Fatalf("runs.using = %q, want composite", a.Runs.Using)
	}
	return a
}

var expr = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// eval evaluates the expressions the action may use: inputs.NAME,
// steps.ID.outputs.NAME, github.action_path, and in if: the comparisons
// X == 'v' and X != 'v'. Anything else fails the test, so the action stays
// within what this runner understands.
func (r *runner) value(e string, inputs map[string]string) string {
	switch {
	case strings.HasPrefix(e, "inputs."):
		v, ok := inputs[strings.TrimPrefix(e, "inputs.")]
		if !ok {
			r.t.Fatalf("expression %q: no such input", e)
		}
		return v
	case strings.HasPrefix(e, "steps."):
		parts := strings.Split(e, ".")
		if len(parts) != 4 || parts[2] != "outputs" {
			r.t.Fatalf("expression %q not understood", e)
		}
		return r.outputs[parts[1]][parts[3]]
	case e == "github.action_path":
		return r.root
	}
	r.t.Fatalf("expression %q not understood by the test runner", e)
	return ""
}

func (r *runner) expand(s string, inputs map[string]string) string {
	return expr.ReplaceAllStringFunc(s, func(m string) string {
		return r.value(expr.FindStringSubmatch(m)[1], inputs)
	})
}

func (r *runner) cond(s string, inputs map[string]string) bool {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "${{"), "}}"))
	if s == "" {
		return true
	}
	for _, op := range []string{"==", "!="} {
		if l, rhs, ok := strings.Cut(s, op); ok {
			rhs = strings.TrimSpace(rhs)
			if len(rhs) < 2 || rhs[0] != '\'' || rhs[len(rhs)-1] != '\'' {
				r.t.Fatalf("if: %q not understood", s)
			}
			eq := r.value(strings.TrimSpace(l), inputs) == rhs[1:len(rhs)-1]
			return eq == (op == "==")
		}
	}
	r.t.Fatalf("if: %q not understood", s)
	return false
}

// run runs the action with inputs as a runner does: each run step as
// `bash --noprofile --norc -eo pipefail FILE` with the step's env, the
// runner's variables and a fresh GITHUB_OUTPUT; steps after a failure are
// skipped. uses: steps (actions/setup-go) are skipped: Go is installed.
func (r *runner) run(a action, given map[string]string) result {
	t := r.t
	inputs := map[string]string{}
	for k, in := range a.Inputs {
		inputs[k] = in.Default
	}
	for k, v := range given {
		if _, ok := a.Inputs[k]; !ok {
			t.Fatalf("no input %q", k)
		}
		inputs[k] = v
	}
	for k, in := range a.Inputs {
		if in.Required && inputs[k] == "" {
			t.Fatalf("input %q is required", k)
		}
	}
	r.outputs = map[string]map[string]string{}
	var res result
	for i, s := range a.Runs.Steps {
		if res.failed != "" || !r.cond(s.If, inputs) {
			continue
		}
		if s.Uses != "" {
			if !strings.HasPrefix(s.Uses, "actions/setup-go@") {
				t.Fatalf("step %q uses %s, which the test runner cannot run", s.Name, s.Uses)
			}
			continue
		}
		if s.Shell != "bash" {
			t.Fatalf("step %q: shell %q, want bash", s.Name, s.Shell)
		}
		if expr.MatchString(s.Run) {
			t.Fatalf("step %q pastes an expression into its script: pass it through env (no shell injection)", s.Name)
		}
		res.ran = append(res.ran, s.ID)
		script := filepath.Join(r.temp, fmt.Sprintf("step-%d.sh", i))
		out := filepath.Join(r.temp, fmt.Sprintf("output-%d", i))
		ghPath := filepath.Join(r.temp, fmt.Sprintf("path-%d", i))
		for _, f := range []string{out, ghPath} {
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(script, []byte(s.Run), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(t.Context(), "bash", "--noprofile", "--norc", "-eo", "pipefail", script)
		cmd.Dir = r.temp
		env := []string{
			"PATH=" + strings.Join(append(r.path, os.Getenv("PATH")), string(os.PathListSeparator)),
			"HOME=" + os.Getenv("HOME"),
			"CI=true", "GITHUB_ACTIONS=true", "RUNNER_OS=Linux", "RUNNER_ARCH=X64",
			"RUNNER_TEMP=" + r.temp, "GITHUB_WORKSPACE=" + r.temp,
			"GITHUB_ACTION_PATH=" + r.root, "GITHUB_ACTION=__layerslim",
			"GITHUB_OUTPUT=" + out, "GITHUB_STEP_SUMMARY=" + r.summary, "GITHUB_PATH=" + ghPath,
		}
		for _, k := range []string{"GOPATH", "GOCACHE", "GOMODCACHE", "GOFLAGS", "GOPROXY", "GOTOOLCHAIN", "TMPDIR", testenv.EnvRegistry} {
			if v, ok := os.LookupEnv(k); ok {
				env = append(env, k+"="+v)
			}
		}
		for k, v := range s.Env {
			env = append(env, k+"="+r.expand(v, inputs))
		}
		cmd.Env = env
		msg, err := cmd.CombinedOutput()
		t.Logf("step %q:\n%s", s.Name, msg)
		r.outputs[s.ID] = readOutputs(t, out)
		r.path = append(readLines(t, ghPath), r.path...)
		if err != nil {
			res.failed = s.ID
			res.exitCode = cmd.ProcessState.ExitCode()
		}
	}
	res.outputs = map[string]string{}
	for k, o := range a.Outputs {
		res.outputs[k] = r.expand(o.Value, inputs)
	}
	b, _ := os.ReadFile(r.summary)
	res.summary = string(b)
	return res
}

func readLines(t *testing.T, file string) []string {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// readOutputs reads a GITHUB_OUTPUT file: NAME=VALUE lines, and NAME<<DELIM
// blocks.
func readOutputs(t *testing.T, file string) map[string]string {
	lines := readLines(t, file)
	out := map[string]string{}
	for i := 0; i < len(lines); i++ {
		if k, delim, ok := strings.Cut(lines[i], "<<"); ok && !strings.Contains(k, "=") {
			var v []string
			for i++; i < len(lines) && lines[i] != delim; i++ {
				v = append(v, lines[i])
			}
			out[k] = strings.Join(v, "\n")
			continue
		}
		k, v, _ := strings.Cut(lines[i], "=")
		out[k] = v
	}
	return out
}

func newRunner(t *testing.T) *runner {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	temp := t.TempDir()
	return &runner{t: t, root: root, temp: temp, summary: filepath.Join(temp, "step_summary.md")}
}

func TestAction(t *testing.T) {
	testenv.Tool(t, "jq")
	a := load(t)
	sample := testenv.CopyDir(t, "../../testdata/sample")
	out := filepath.Join(t.TempDir(), "out")

	r := newRunner(t)
	res := r.run(a, map[string]string{
		"src":          "oci:" + sample + ":sample",
		"dst":          "oci:" + out + ":slim",
		"args":         `--squash none --keep 'usr/share/doc/*/README' --platform "linux/amd64"`,
		"analyze-args": `--keep 'usr/share/doc/*/README' --platform "linux/amd64"`,
	})
	if res.failed != "" {
		t.Fatalf("step %s failed (exit %d)", res.failed, res.exitCode)
	}
	if strings.Join(res.ran, ",") != "build,analyze,rewrite" {
		t.Errorf("ran %v", res.ran)
	}
	// The outputs name what is in the layout.
	tags := layoutTags(t, out)
	if res.outputs["digest"] == "" || res.outputs["digest"] != tags["slim"] {
		t.Errorf("output digest %q, the layout has slim at %q", res.outputs["digest"], tags["slim"])
	}
	if res.outputs["debug-digest"] == "" || res.outputs["debug-digest"] != tags["slim-debug"] {
		t.Errorf("output debug-digest %q, the layout has slim-debug at %q", res.outputs["debug-digest"], tags["slim-debug"])
	}
	if res.outputs["waste-exceeded"] != "false" {
		t.Errorf("waste-exceeded = %q", res.outputs["waste-exceeded"])
	}
	// analyze-args reach analyze: one platform, and the README kept.
	if strings.Contains(res.summary, "arm64") || strings.Contains(res.summary, "samplepkg/README") {
		t.Errorf("analyze did not get analyze-args:\n%s", res.summary)
	}
	for _, want := range []string{"## layerslim analyze: <code>oci:", "| layer | created by |", "### Rewritten", "- slim: `oci:"} {
		if !strings.Contains(res.summary, want) {
			t.Errorf("job summary lacks %q:\n%s", want, res.summary)
		}
	}
	// args: quoted words arrive whole, and reach rewrite.
	rep, err := os.ReadFile(res.outputs["report"])
	if err != nil {
		t.Fatal(err)
	}
	var fr struct {
		Report struct {
			Options string
			Images  []struct{ Platform string }
		}
	}
	if err := json.Unmarshal(rep, &fr); err != nil {
		t.Fatal(err)
	}
	if len(fr.Report.Images) != 1 || fr.Report.Images[0].Platform != "linux/amd64" || !strings.Contains(fr.Report.Options, "keep=usr/share/doc/*/README") {
		t.Errorf("rewrite did not get the args: %s", rep)
	}
	if strings.Contains(string(rep), `"usr/share/doc/samplepkg/README"`) {
		t.Error("--keep 'usr/share/doc/*/README' did not reach rewrite: the README was dropped")
	}
	// The build step put layerslim on the PATH of later steps.
	if len(r.path) != 1 || !fileExists(filepath.Join(r.path[0], "layerslim")) {
		t.Errorf("GITHUB_PATH: %v", r.path)
	}

	t.Run("gate", func(t *testing.T) {
		g := newRunner(t)
		g.path = r.path
		res := g.run(a, map[string]string{"src": "oci:" + sample + ":sample", "dst": "oci:" + t.TempDir() + ":x", "max-waste": "1%", "install": "false"})
		if res.failed != "analyze" || res.exitCode != 3 {
			t.Errorf("failed step %q, exit %d; want analyze, 3", res.failed, res.exitCode)
		}
		if res.outputs["waste-exceeded"] != "true" || res.outputs["digest"] != "" {
			t.Errorf("outputs %v: want waste-exceeded and no rewrite", res.outputs)
		}
		if !strings.Contains(res.summary, "> [!WARNING]") || !strings.Contains(res.summary, "exceeds --max-waste 1%") {
			t.Errorf("the summary does not show the gate:\n%s", res.summary)
		}
	})

	t.Run("inputs cannot inject shell", func(t *testing.T) {
		g := newRunner(t)
		g.path = r.path
		marker := filepath.Join(t.TempDir(), "pwned")
		evil := "oci:/nonexistent\"; touch " + marker + "; echo \"$(touch " + marker + ")"
		res := g.run(a, map[string]string{"src": evil, "args": "$(touch " + marker + ")", "install": "false"})
		if res.failed != "analyze" || res.exitCode != 1 {
			t.Errorf("failed step %q, exit %d; want analyze, 1", res.failed, res.exitCode)
		}
		if fileExists(marker) {
			t.Error("an input ran a command")
		}
	})
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// layoutTags maps the tags of an OCI layout to their digests.
func layoutTags(t *testing.T, dir string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range idx.Manifests {
		out[m.Annotations["org.opencontainers.image.ref.name"]] = m.Digest
	}
	return out
}

// The README's CI examples parse, and the GitHub one uses only inputs and
// outputs the action has.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, "## In CI"), strings.Index(s, "## layerslim's own image")
	if i < 0 || j < i {
		t.Fatal("README.md has no In CI section")
	}
	blocks := strings.Split(s[i:j], "```yaml\n")[1:]
	if len(blocks) != 2 {
		t.Fatalf("%d YAML examples, want the GitHub and the GitLab one", len(blocks))
	}
	a := load(t)
	for n, blk := range blocks {
		blk = blk[:strings.Index(blk, "```")]
		var steps []map[string]any
		var v any
		if n == 0 {
			err = yaml.Unmarshal([]byte(blk), &steps)
		} else {
			err = yaml.Unmarshal([]byte(blk), &v)
		}
		if err != nil {
			t.Errorf("README example %d: %v\n%s", n+1, err, blk)
		}
		if n != 0 {
			continue
		}
		for _, st := range steps {
			if uses, _ := st["uses"].(string); strings.HasPrefix(uses, "layerslim/layerslim@") {
				for k := range st["with"].(map[string]any) {
					if _, ok := a.Inputs[k]; !ok {
						t.Errorf("README example uses input %q, which action.yml lacks", k)
					}
				}
			}
		}
		for _, m := range regexp.MustCompile(`steps\.slim\.outputs\.([a-z-]+)`).FindAllStringSubmatch(blk, -1) {
			if _, ok := a.Outputs[m[1]]; !ok {
				t.Errorf("README example uses output %q, which action.yml lacks", m[1])
			}
		}
	}
}

func TestActionWithoutLayerslim(t *testing.T) {
	r := newRunner(t)
	t.Setenv("PATH", "/usr/bin:/bin")
	res := r.run(load(t), map[string]string{"src": "oci:/nowhere", "install": "false"})
	if res.failed != "build" || strings.Join(res.ran, ",") != "build" {
		t.Errorf("failed %q after %v; want the build step to stop the action", res.failed, res.ran)
	}
}
