// Package versions holds the pinned component versions (versions.yaml) and their overrides.
package versions

import (
	_ "embed"
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"
)

//go:embed versions.yaml
var setsYAML []byte

const (
	// DefaultSet is the set used when none is named.
	DefaultSet = "pinned"
	// SetEnv names the environment variable that picks a set (flag --versions).
	SetEnv = "VERSIONS"
	// Embedded is the backend name whose view of a set applies the set's embedded block.
	Embedded = "embedded"
)

// Set is one choice of component versions. On kind, Vault and ESO are the image tags the
// charts run; empty means the chart's own app version.
type Set struct {
	Name          string `json:"-"` // the set it came from
	Kubernetes    string `json:"kubernetes"`
	KindNodeImage string `json:"kindNodeImage"`
	Etcd          string `json:"etcd"`
	Vault         string `json:"vault"`
	VaultChart    string `json:"vaultChart"`
	ESO           string `json:"eso"`
	ESOChart      string `json:"esoChart"`
	Postgres      string `json:"postgres"`
}

// namedSet is one entry of versions.yaml: a set, and what the embedded backend uses instead
// where the module proxy cannot build the set's version.
type namedSet struct {
	Set
	Embedded *Set `json:"embedded,omitempty"`
}

// entry binds one field to its override names.
type entry struct {
	field *string
	env   string
	flag  string
	check *regexp.Regexp
	chart string // for an app version: the env of its chart's version
}

var (
	semverV    = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	semverBare = regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	major      = regexp.MustCompile(`^\d+$`)
	image      = regexp.MustCompile(`^[a-z0-9./_-]+(:[\w][\w.-]*)?(@sha256:[a-f0-9]{64})?$`)
)

func (s *Set) entries() []entry {
	return []entry{
		{&s.Kubernetes, "KUBERNETES_VERSION", "kubernetes-version", semverV, ""},
		{&s.KindNodeImage, "KIND_NODE_IMAGE", "node-image", image, ""},
		{&s.Etcd, "ETCD_VERSION", "etcd-version", semverV, ""},
		{&s.Vault, "VAULT_VERSION", "vault-version", semverBare, "VAULT_CHART_VERSION"},
		{&s.VaultChart, "VAULT_CHART_VERSION", "vault-chart-version", semverBare, ""},
		{&s.ESO, "ESO_VERSION", "eso-version", semverV, "ESO_CHART_VERSION"},
		{&s.ESOChart, "ESO_CHART_VERSION", "eso-chart-version", semverBare, ""},
		{&s.Postgres, "POSTGRES_VERSION", "postgres-version", major, ""},
	}
}

var sets = sync.OnceValue(func() map[string]namedSet {
	var m map[string]namedSet
	if err := yaml.UnmarshalStrict(setsYAML, &m); err != nil {
		panic(fmt.Sprintf("versions.yaml: %v", err))
	}
	return m
})

// Names lists the version sets of versions.yaml.
func Names() []string {
	var n []string
	for k := range sets() {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Named returns set name as backend sees it (embedded: with the set's embedded block applied).
func Named(name, backend string) (Set, error) {
	ns, ok := sets()[name]
	if !ok {
		return Set{}, fmt.Errorf("unknown version set %q (%s): versions.yaml has %s", name, SetEnv, strings.Join(Names(), ", "))
	}
	s := ns.Set
	s.Name = name
	if backend == Embedded && ns.Embedded != nil {
		e := ns.Embedded
		for i, d := range s.entries() {
			if v := *e.entries()[i].field; v != "" {
				*d.field = v
			}
		}
	}
	return s, nil
}

// Pinned returns the pinned set, without overrides.
func Pinned() Set {
	s, err := Named(DefaultSet, "")
	if err != nil {
		panic(err)
	}
	return s
}

// Choice is a set picked by name plus single-version overrides, from flags and the
// environment; Resolve turns it into a Set once the backend is known.
type Choice struct {
	set   string
	flags map[string]*string // env name -> flag value ("" = not given)
}

// RegisterFlags adds --versions and one flag per version to fs; a flag wins over its
// environment variable.
func (c *Choice) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.set, "versions", "", fmt.Sprintf("version set of versions.yaml: %s (env %s; default %s)", strings.Join(Names(), " | "), SetEnv, DefaultSet))
	c.flags = map[string]*string{}
	var s Set
	for _, e := range s.entries() {
		c.flags[e.env] = fs.String(e.flag, "", fmt.Sprintf("override the set's version (env %s)", e.env))
	}
}

// FromEnv resolves the set named by VERSIONS and the environment's overrides for backend.
func FromEnv(backend string) (Set, error) {
	var c Choice
	return c.Resolve(backend)
}

// Resolve returns the chosen set as backend sees it, with the overrides applied, validated.
// On kind, a chart version overridden without its app version runs the chart's own app
// version (the app version becomes empty).
func (c *Choice) Resolve(backend string) (Set, error) {
	name := c.set
	if name == "" {
		name = strings.TrimSpace(os.Getenv(SetEnv))
	}
	if name == "" {
		name = DefaultSet
	}
	return resolve(name, backend, func(env string) string {
		if f := c.flags[env]; f != nil && strings.TrimSpace(*f) != "" {
			return *f
		}
		return os.Getenv(env)
	})
}

// Target resolves set name as an upgrade target: its entries are overridden by the
// environment variables named with prefix (e.g. TO_VAULT_VERSION).
func Target(name, backend, prefix string) (Set, error) {
	return resolve(name, backend, func(env string) string { return os.Getenv(prefix + env) })
}

// resolve returns set name as backend sees it with the overrides lookup gives.
func resolve(name, backend string, lookup func(env string) string) (Set, error) {
	s, err := Named(name, backend)
	if err != nil {
		return Set{}, err
	}
	given := map[string]bool{}
	for _, e := range s.entries() {
		v := strings.TrimSpace(lookup(e.env))
		if v != "" {
			*e.field, given[e.env] = v, true
		}
	}
	if backend != Embedded {
		for _, e := range s.entries() {
			if e.chart != "" && given[e.chart] && !given[e.env] {
				*e.field = ""
			}
		}
	}
	return s, s.Validate()
}

// Validate reports the first malformed version, naming the variable that sets it. An app
// version may be empty (the chart's own).
func (s *Set) Validate() error {
	for _, e := range s.entries() {
		if *e.field == "" && e.chart != "" {
			continue
		}
		if !e.check.MatchString(*e.field) {
			return fmt.Errorf("version %q for %s (--%s) is malformed: want the form of %q", *e.field, e.env, e.flag, exampleOf(e))
		}
	}
	return nil
}

func exampleOf(e entry) string {
	p := Pinned()
	for _, pe := range p.entries() {
		if pe.env == e.env {
			return *pe.field
		}
	}
	return ""
}

// Flags renders s as the flags that choose exactly s (for a child process).
func (s Set) Flags() []string {
	a := []string{"--versions=" + s.Name}
	for _, e := range s.entries() {
		a = append(a, "--"+e.flag+"="+*e.field)
	}
	return a
}

// Trimmed returns v without a leading "v".
func Trimmed(v string) string { return strings.TrimPrefix(v, "v") }

// WithV returns v with a leading "v".
func WithV(v string) string { return "v" + Trimmed(v) }
