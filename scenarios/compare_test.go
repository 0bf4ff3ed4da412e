package scenarios

import (
	"strings"
	"testing"
)

func TestDiffDataNamesOnlyTheCorruptedKey(t *testing.T) {
	demo := map[string][]byte{
		"POSTGRES_USER": []byte("bookstore"), "POSTGRES_PASSWORD": []byte("devpassword"),
		"POSTGRES_DB": []byte("bookstore"), "DB_DSN": []byte("postgres://bookstore:devpassword@postgres:5432/bookstore"),
	}
	synced := map[string][]byte{}
	for k, v := range demo {
		synced[k] = append([]byte(nil), v...)
	}
	if d := DiffData(demo, synced); d != "" {
		t.Fatalf("identical data reported as different: %s", d)
	}
	synced["POSTGRES_PASSWORD"] = []byte("devpassworD")
	d := DiffData(demo, synced)
	if !strings.HasPrefix(d, "POSTGRES_PASSWORD differs") || strings.Count(d, ";") != 0 {
		t.Fatalf("want only POSTGRES_PASSWORD named, got %q", d)
	}
	for _, leak := range []string{"devpassword", "devpassworD"} {
		if strings.Contains(d, leak) {
			t.Fatalf("diff shows a value: %q", d)
		}
	}
	delete(synced, "DB_DSN")
	synced["EXTRA"] = []byte("x")
	d = DiffData(demo, synced)
	if !strings.Contains(d, "DB_DSN missing") || !strings.Contains(d, "EXTRA unexpected") {
		t.Fatalf("missing and extra keys not named: %q", d)
	}
}
