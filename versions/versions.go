// Package versions holds the pinned component versions (versions.yaml) and their overrides.
package versions

import (
	_ "embed"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

//go:embed versions.yaml
var pinned []byte

// Set is one choice of component versions.
type Set struct {
	Kubernetes    string `json:"kubernetes"`
	KindNodeImage string `json:"kindNodeImage"`
	Etcd          string `json:"etcd"`
	Vault         string `json:"vault"`
	VaultChart    string `json:"vaultChart"`
	ESO           string `json:"eso"`
	ESOChart      string `json:"esoChart"`
	Postgres      string `json:"postgres"`
}

// entry binds one field to its override names.
type entry struct {
	field *string
	env   string
	flag  string
	check *regexp.Regexp
}

var (
	semverV    = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	semverBare = regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	major      = regexp.MustCompile(`^\d+$`)
	image      = regexp.MustCompile(`^[a-z0-9./_-]+(:[\w][\w.-]*)?(@sha256:[a-f0-9]{64})?$`)
)

func (s *Set) entries() []entry {
	return []entry{
		{&s.Kubernetes, "KUBERNETES_VERSION", "kubernetes-version", semverV},
		{&s.KindNodeImage, "KIND_NODE_IMAGE", "node-image", image},
		{&s.Etcd, "ETCD_VERSION", "etcd-version", semverV},
		{&s.Vault, "VAULT_VERSION", "vault-version", semverBare},
		{&s.VaultChart, "VAULT_CHART_VERSION", "vault-chart-version", semverBare},
		{&s.ESO, "ESO_VERSION", "eso-version", semverV},
		{&s.ESOChart, "ESO_CHART_VERSION", "eso-chart-version", semverBare},
		{&s.Postgres, "POSTGRES_VERSION", "postgres-version", major},
	}
}

// Pinned returns the versions of versions.yaml, without overrides.
func Pinned() Set {
	var s Set
	if err := yaml.UnmarshalStrict(pinned, &s); err != nil {
		panic(fmt.Sprintf("versions.yaml: %v", err))
	}
	return s
}

// FromEnv returns the pinned versions with environment overrides applied.
func FromEnv() (Set, error) {
	s := Pinned()
	for _, e := range s.entries() {
		if v, ok := os.LookupEnv(e.env); ok && strings.TrimSpace(v) != "" {
			*e.field = strings.TrimSpace(v)
		}
	}
	return s, s.Validate()
}

// RegisterFlags adds one flag per version to fs; flag values override s when parsed.
func (s *Set) RegisterFlags(fs *flag.FlagSet) {
	for _, e := range s.entries() {
		fs.StringVar(e.field, e.flag, *e.field, fmt.Sprintf("override the pinned version (env %s)", e.env))
	}
}

// Validate reports the first malformed version, naming the variable that sets it.
func (s *Set) Validate() error {
	for _, e := range s.entries() {
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

// Trimmed returns v without a leading "v".
func Trimmed(v string) string { return strings.TrimPrefix(v, "v") }

// WithV returns v with a leading "v".
func WithV(v string) string { return "v" + Trimmed(v) }
