package build

import (
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// refusalKind says why the module proxy did not give us a module version.
type refusalKind int

const (
	refusedNone      refusalKind = iota
	refusedNetwork               // the proxy could not be reached
	refusedForbidden             // 403: the filtered mirror does not serve it
	refusedChecksum              // served, but the checksum-DB lookup fails (or mismatches)
	refusedNotFound              // 404/410, unknown revision
)

// refusal is what classify found in go's output.
type refusal struct {
	kind            refusalKind
	module, version string // the module@version the failing line names; may be empty
	line            string // that line, trimmed
}

func (r refusal) reason() string {
	switch r.kind {
	case refusedForbidden:
		return "403 Forbidden"
	case refusedChecksum:
		if strings.Contains(r.line, "SECURITY ERROR") || strings.Contains(r.line, "checksum mismatch") {
			return "checksum mismatch"
		}
		return "checksum database lookup failed"
	case refusedNotFound:
		return "not found"
	}
	return ""
}

// describe: "M@V is not available from the module proxy (403 Forbidden)".
func (r refusal) describe() string {
	mv := r.module + "@" + r.version
	switch r.kind {
	case refusedForbidden:
		return mv + " is not available from the module proxy (403 Forbidden)"
	case refusedChecksum:
		return mv + " is served by the module proxy but go refuses it: " + r.reason() + " (checksum database / sumdb)"
	case refusedNotFound:
		return mv + " is not available from the module proxy (not found)"
	}
	return mv + ": " + r.line
}

var (
	modAtVersion = regexp.MustCompile(`([A-Za-z0-9][A-Za-z0-9._~/-]*)@(v\d+\.\d+\.\d+[0-9A-Za-z.+-]*)`)
	networkError = regexp.MustCompile(`dial tcp|no such host|connection refused|connection reset|network is unreachable|i/o timeout|TLS handshake timeout|tls: |x509: |Client\.Timeout|proxyconnect|context deadline exceeded`)
	checksumErr  = regexp.MustCompile(`/sumdb/|verifying |SECURITY ERROR|checksum mismatch`)
	notFoundErr  = regexp.MustCompile(`404 Not Found|410 Gone|unknown revision|invalid version|no matching versions`)
)

// classify finds the first line of go's output that explains a refused or unreachable
// module, and the module@version it names.
func classify(out string) (refusal, bool) {
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		var k refusalKind
		switch {
		case networkError.MatchString(line):
			k = refusedNetwork
		case strings.Contains(line, "403 Forbidden"):
			k = refusedForbidden
		case checksumErr.MatchString(line) && (strings.Contains(line, "404") || strings.Contains(line, "410") ||
			strings.Contains(line, "SECURITY ERROR") || strings.Contains(line, "checksum mismatch")):
			k = refusedChecksum
		case notFoundErr.MatchString(line):
			k = refusedNotFound
		default:
			continue
		}
		r := refusal{kind: k, line: line}
		for _, m := range modAtVersion.FindAllStringSubmatch(line, -1) {
			if !strings.Contains(m[1], "/pkg/mod/") { // not the source file that imports it
				r.module, r.version = m[1], m[2]
				break
			}
		}
		return r, true
	}
	return refusal{}, false
}

type semver struct {
	major, minor, patch int
	pre                 string
}

var semverRe = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$`)

func parseSemver(s string) (semver, bool) {
	m := semverRe.FindStringSubmatch(s)
	if m == nil {
		return semver{}, false
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	c, _ := strconv.Atoi(m[3])
	return semver{a, b, c, m[4]}, true
}

func (s semver) cmp(o semver) int {
	for _, d := range []int{s.major - o.major, s.minor - o.minor, s.patch - o.patch} {
		if d != 0 {
			return d
		}
	}
	switch {
	case s.pre == o.pre:
		return 0
	case s.pre == "":
		return 1
	case o.pre == "":
		return -1
	}
	return strings.Compare(s.pre, o.pre)
}

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

// orderCandidates sorts the versions worth trying instead of want: same major.minor first
// (nearest patch), then nearest minor, then nearest major; inside another minor or major the
// versions next to want come first; on a tie the newer version comes first. want itself, unparsable
// versions, duplicates and (unless want is one) prereleases are dropped.
func orderCandidates(want string, have []string) []string {
	w, ok := parseSemver(want)
	if !ok {
		return nil
	}
	type cand struct {
		s   string
		v   semver
		key [4]int
	}
	seen := map[string]bool{}
	var cs []cand
	for _, h := range have {
		v, ok := parseSemver(h)
		if !ok || v.cmp(w) == 0 || seen[h] || (v.pre != "" && w.pre == "") {
			continue
		}
		seen[h] = true
		below := 0
		if v.cmp(w) < 0 {
			below = 1
		}
		near := func(x int) int { // below want the highest come first, above it the lowest
			if below == 1 {
				return -x
			}
			return x
		}
		var key [4]int
		switch {
		case v.major != w.major:
			key = [4]int{abs(v.major - w.major), below, near(v.minor), near(v.patch)}
		case v.minor != w.minor:
			key = [4]int{0, abs(v.minor - w.minor), below, near(v.patch)}
		default:
			key = [4]int{0, 0, abs(v.patch - w.patch), below}
		}
		cs = append(cs, cand{h, v, key})
	}
	sort.SliceStable(cs, func(i, j int) bool {
		for k := range cs[i].key {
			if cs[i].key[k] != cs[j].key[k] {
				return cs[i].key[k] < cs[j].key[k]
			}
		}
		return cs[i].v.cmp(cs[j].v) > 0
	})
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.s
	}
	return out
}

// pick returns the first n of cands (in their order), making room for the known-good
// versions in must, which the list may rank further away.
func pick(cands, must []string, n int) []string {
	if len(cands) <= n {
		return cands
	}
	out := slices.Clone(cands[:n])
	var add []string
	for _, m := range must {
		if slices.Contains(cands, m) && !slices.Contains(out, m) && len(add) < n {
			add = append(add, m)
		}
	}
	out = append(out[:n-len(add)], add...)
	sort.SliceStable(out, func(i, j int) bool { return slices.Index(cands, out[i]) < slices.Index(cands, out[j]) })
	return out
}
