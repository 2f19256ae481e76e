package configrepo_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/socflow/socflow/internal/configrepo"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in      string
		want    configrepo.Repo
		sshURL  string
		wantStr string // String(), when it differs from in
	}{
		{in: "git+ssh://git@github.example/org/wazuh-config.git@main",
			want:   configrepo.Repo{User: "git", Host: "github.example", Port: 22, Path: "/org/wazuh-config.git", Ref: "main"},
			sshURL: "ssh://git@github.example:22/org/wazuh-config.git"},
		{in: "git+ssh://deploy@10.0.0.5:2222/srv/git/config.git@v4.11.0",
			want:   configrepo.Repo{User: "deploy", Host: "10.0.0.5", Port: 2222, Path: "/srv/git/config.git", Ref: "v4.11.0"},
			sshURL: "ssh://deploy@10.0.0.5:2222/srv/git/config.git"},
		{in: "git+ssh://git@[fd00::1]:2200/cfg@release/2026-05",
			want:   configrepo.Repo{User: "git", Host: "fd00::1", Port: 2200, Path: "/cfg", Ref: "release/2026-05"},
			sshURL: "ssh://git@[fd00::1]:2200/cfg"},
		{in: "git+ssh://git@host/~/cfg.git@refs/tags/v1",
			want:   configrepo.Repo{User: "git", Host: "host", Port: 22, Path: "/~/cfg.git", Ref: "refs/tags/v1"},
			sshURL: "ssh://git@host:22/~/cfg.git"},
		{in: "git+ssh://git@host/team@corp/cfg@0123456789abcdef0123456789abcdef01234567",
			want:   configrepo.Repo{User: "git", Host: "host", Port: 22, Path: "/team@corp/cfg", Ref: "0123456789abcdef0123456789abcdef01234567"},
			sshURL: "ssh://git@host:22/team@corp/cfg"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := configrepo.ParseURL(tt.in)
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			if got != tt.want {
				t.Fatalf("ParseURL = %+v, want %+v", got, tt.want)
			}
			if got.SSHURL() != tt.sshURL {
				t.Errorf("SSHURL = %q, want %q", got.SSHURL(), tt.sshURL)
			}
			again, err := configrepo.ParseURL(got.String())
			if err != nil || again != got {
				t.Errorf("String() %q does not parse back: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestParseURLErrorsNameThePartAndTheFix(t *testing.T) {
	tests := []struct {
		in, part string
		want     []string
	}{
		{"", "url", []string{"git+ssh://user@host[:port]/path@ref"}},
		{" git+ssh://git@host/cfg@main", "url", []string{"spaces"}},
		{"https://github.example/org/cfg.git@main", "scheme", []string{`"https" is not supported`, "git+ssh://"}},
		{"ssh://git@host/cfg@main", "scheme", []string{`"ssh" is not supported`}},
		{"git@host:cfg.git@main", "scheme", nil},
		{"git+ssh:git@host/cfg@main", "host", []string{"two slashes"}},
		{"git+ssh://host/cfg@main", "user", []string{"login user"}},
		{"git+ssh://git:secret@host/cfg@main", "user", []string{"password", "SSH key"}},
		{"git+ssh://-oProxyCommand=x@host/cfg@main", "user", []string{"option"}},
		{"git+ssh://git@-oProxyCommand=x/cfg@main", "host", []string{"option"}},
		{"git+ssh://git@/cfg@main", "host", []string{"is missing"}},
		{"git+ssh://git@host:99999/cfg@main", "port", []string{`"99999"`, "1-65535"}},
		{"git+ssh://git@host:ssh/cfg@main", "url", nil},
		{"git+ssh://git@host:/cfg@main", "port", []string{"empty"}},
		{"git+ssh://git@host/cfg.git", "ref", []string{"is missing", "branch, tag or commit"}},
		{"git+ssh://git@host/@main", "path", []string{"is missing"}},
		{"git+ssh://git@host@main", "path", []string{"is missing"}},
		{"git+ssh://git@host/cfg@", "ref", []string{"is empty"}},
		{"git+ssh://git@host/cfg@-main", "ref", []string{"starts with '-'"}},
		{"git+ssh://git@host/cfg@a..b", "ref", []string{".."}},
		{"git+ssh://git@host/cfg@main.lock", "ref", []string{".lock"}},
		{"git+ssh://git@host/cfg@feature/", "ref", []string{"empty path component"}},
		{"git+ssh://git@host/cfg@HEAD~1", "ref", []string{`'~'`}},
		{"git+ssh://git@host/cfg@main?x=1", "url", []string{"query"}},
		{"git+ssh://git@host/cfg@main#frag", "url", []string{"fragment"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := configrepo.ParseURL(tt.in)
			var ue *configrepo.URLError
			if !errors.As(err, &ue) {
				t.Fatalf("ParseURL(%q) = %v, want a *URLError", tt.in, err)
			}
			if ue.Part != tt.part {
				t.Errorf("part %q, want %q (%v)", ue.Part, tt.part, err)
			}
			if !strings.HasPrefix(err.Error(), "cannot use configuration repository") || ue.Fix == "" {
				t.Errorf("error %q does not say what cannot be done and how to fix it", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestIsCommitHash(t *testing.T) {
	for in, want := range map[string]bool{
		"0123456789abcdef0123456789abcdef01234567": true,
		"0123456789ABCDEF0123456789abcdef01234567": false, // git prints lowercase; an uppercase one is a ref name
		"0123456789abcdef":                         false,
		"main":                                     false,
	} {
		if got := configrepo.IsCommitHash(in); got != want {
			t.Errorf("IsCommitHash(%q) = %v, want %v", in, got, want)
		}
	}
}
