//go:build linux

package reaper

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	base := []string{"--instance", "demo", "--plan", "sha256:abc"}
	for _, tc := range []struct {
		name string
		args []string
		want Options
		err  string
	}{
		{
			name: "minimal",
			args: append(base, "--", "node", "build/back.js"),
			want: Options{Instance: "demo", Plan: "sha256:abc", Command: []string{"node", "build/back.js"}},
		},
		{
			name: "all flags, single dash accepted as Go flags do",
			args: []string{"-instance=demo", "--plan=p", "--grace", "1.5s", "--forward", "--", "node", "--max-old-space-size=8096", "build/back.js"},
			want: Options{Instance: "demo", Plan: "p", Grace: 1500 * time.Millisecond, Forward: true,
				Command: []string{"node", "--max-old-space-size=8096", "build/back.js"}},
		},
		{name: "command flags after -- are not the reaper's", args: append(base, "--", "x", "--grace", "bad"),
			want: Options{Instance: "demo", Plan: "sha256:abc", Command: []string{"x", "--grace", "bad"}}},
		{name: "no args", args: nil, err: "no command given after --"},
		{name: "nothing after --", args: append(base, "--"), err: "no command given after --"},
		{name: "empty command", args: append(base, "--", ""), err: "no command given after --"},
		{name: "command without --", args: append(base, "node"), err: `unexpected argument "node": the command must follow --`},
		{name: "missing instance", args: []string{"--plan", "p", "--", "x"}, err: "--instance is required"},
		{name: "missing plan", args: []string{"--instance", "i", "--", "x"}, err: "--plan is required"},
		{name: "negative grace", args: append(base, "--grace", "-1s", "--", "x"), err: "--grace must not be negative"},
		{name: "bad grace", args: append(base, "--grace", "soon", "--", "x"), err: `invalid value "soon" for flag -grace`},
		{name: "unknown flag", args: append(base, "--verbose", "--", "x"), err: "flag provided but not defined: -verbose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseArgs(tc.args)
			if tc.err != "" {
				var ue *UsageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want a UsageError containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseArgsHelp(t *testing.T) {
	if _, err := ParseArgs([]string{"--help"}); !errors.Is(err, ErrHelp) {
		t.Fatalf("err %v, want ErrHelp", err)
	}
}
