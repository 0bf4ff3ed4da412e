package scenarios

// What Postgres says about logins and the roles Vault mints.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// redactedError carries an error's text with every registered secret masked, and the error
// itself, so that errors.As still finds (say) Postgres' *pgconn.PgError.
type redactedError struct {
	msg string
	err error
}

func (r *redactedError) Error() string { return r.msg }
func (r *redactedError) Unwrap() error { return r.err }

func (e *Env) redactErr(prefix string, err error) error {
	return &redactedError{msg: prefix + e.Lab.Secrets().String(err.Error()), err: err}
}

// Postgres' SQLSTATEs for a refused login: invalid_password, invalid_authorization_specification
// (for example a role that does not exist).
const (
	sqlstateInvalidPassword = "28P01"
	sqlstateInvalidAuthSpec = "28000"
)

// pgAuthFailure returns Postgres' SQLSTATE when err is Postgres refusing the login (28P01 or
// 28000), and "" for any other error (a network error, a timeout, a failing query).
func pgAuthFailure(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == sqlstateInvalidPassword || pe.Code == sqlstateInvalidAuthSpec) {
		return pe.Code
	}
	return ""
}

// sqlstateInsufficientPrivilege is what a query gets while Vault revokes the credential: the
// fixture's revocation_statements REVOKE the role's privileges before they DROP it, so for a
// moment the login works and the read is refused.
const sqlstateInsufficientPrivilege = "42501"

// pgRevoked returns the SQLSTATE when err shows the credential refused or being revoked: an
// authentication error (pgAuthFailure), or insufficient_privilege on the books table. Any
// other error returns "".
func pgRevoked(err error) string {
	if code := pgAuthFailure(err); code != "" {
		return code
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == sqlstateInsufficientPrivilege {
		return pe.Code
	}
	return ""
}

// Vault's default username template of the postgresql-database-plugin (Vault 1.17,
// plugins/database/postgresql): v-DISPLAYNAME8-ROLENAME8-RANDOM20-UNIXTIME, at most 63.
const defaultPostgresUsernameTemplate = `{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}`

// usernameLikePattern is a Postgres LIKE pattern that matches the usernames Vault mints for
// role with the username template tmpl ("" or the default: Vault's default template). A custom
// template gives its literal text before the first "{{" followed by %; a custom template that
// starts with an action has no safe prefix, and is an error rather than a pattern that would
// match every role.
func usernameLikePattern(tmpl, role string) (string, error) {
	if t := strings.TrimSpace(tmpl); t == "" || t == defaultPostgresUsernameTemplate {
		// The display name is the token's (it varies: root, kubernetes-...), so it is a wildcard.
		return "v-%-" + likeEscape(truncateRunes(role, 8)) + "-%", nil
	}
	prefix, _, _ := strings.Cut(tmpl, "{{")
	if prefix == "" {
		return "", fmt.Errorf("username template %q starts with an action: no literal prefix to find its users by", tmpl)
	}
	return likeEscape(prefix) + "%", nil
}

// likeEscape escapes LIKE's wildcards (Postgres' default escape character is the backslash).
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// likeMatch reports whether s matches the LIKE pattern (%, _ and backslash escapes).
func likeMatch(pattern, s string) bool {
	var re strings.Builder
	re.WriteString("^(?s)")
	esc := false
	for _, c := range pattern {
		switch {
		case esc:
			re.WriteString(regexp.QuoteMeta(string(c)))
			esc = false
		case c == '\\':
			esc = true
		case c == '%':
			re.WriteString(".*")
		case c == '_':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(s)
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

// mintedRolePattern is the LIKE pattern of the Postgres roles Vault mints for the database
// role, from the username template Vault actually has: the role's, else its connection's
// (connection_details.username_template), else the postgres plugin's default.
func (e *Env) mintedRolePattern(ctx context.Context) (string, error) {
	mount, _, _, role, _, err := dbSetup("")
	if err != nil {
		return "", err
	}
	rd, err := e.readDBRole(ctx, mount, role)
	if err != nil {
		return "", err
	}
	tmpl, _ := rd["username_template"].(string)
	if tmpl == "" {
		db, _ := rd["db_name"].(string)
		if db == "" {
			return "", fmt.Errorf("%s/roles/%s names no db_name", mount, role)
		}
		c, err := e.Lab.Vault().Logical().ReadWithContext(ctx, mount+"/config/"+db)
		if err != nil {
			return "", fmt.Errorf("read %s/config/%s: %w", mount, db, err)
		}
		if c == nil {
			return "", fmt.Errorf("%s/config/%s does not exist", mount, db)
		}
		if cd, ok := c.Data["connection_details"].(map[string]any); ok {
			tmpl, _ = cd["username_template"].(string)
		}
		if tmpl == "" {
			if p, _ := c.Data["plugin_name"].(string); p != "postgresql-database-plugin" {
				return "", fmt.Errorf("%s/config/%s: plugin %q has no username template set and is not the postgres plugin, whose default is known", mount, db, p)
			}
		}
	}
	return usernameLikePattern(tmpl, role)
}

// countMintedRoles counts the Postgres roles Vault minted for the database role.
func (e *Env) countMintedRoles(ctx context.Context) (int, error) {
	pattern, err := e.mintedRolePattern(ctx)
	if err != nil {
		return 0, err
	}
	return e.countRoles(ctx, pattern)
}
