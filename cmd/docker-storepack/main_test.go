package main

import (
	"slices"
	"testing"

	"github.com/spf13/cobra"
)

func TestStandaloneArgs(t *testing.T) {
	root := &cobra.Command{Use: "storepack"}
	root.AddCommand(&cobra.Command{Use: "version", Run: func(*cobra.Command, []string) {}})

	for _, tc := range []struct {
		in, want []string
	}{
		{in: []string{"docker-storepack"}, want: []string{"docker-storepack", "storepack"}},
		{in: []string{"docker-storepack", "version"}, want: []string{"docker-storepack", "storepack", "version"}},
		{in: []string{"docker-storepack", "version", "--help"}, want: []string{"docker-storepack", "storepack", "version", "--help"}},
		{in: []string{"docker-storepack", "storepack", "version"}, want: []string{"docker-storepack", "storepack", "version"}},
		{in: []string{"docker-storepack", "--help"}, want: []string{"docker-storepack", "--help"}},
		{in: []string{"docker-storepack", "-H", "unix:///x.sock", "storepack"}, want: []string{"docker-storepack", "-H", "unix:///x.sock", "storepack"}},
		{in: []string{"docker-storepack", "docker-cli-plugin-metadata"}, want: []string{"docker-storepack", "docker-cli-plugin-metadata"}},
		{in: []string{"docker-storepack", "frobnicate"}, want: []string{"docker-storepack", "frobnicate"}},
	} {
		if got := standaloneArgs(root, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("standaloneArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIsStandaloneName(t *testing.T) {
	for arg0, want := range map[string]bool{
		"storepack":                                  true,
		"/usr/local/bin/storepack":                   true,
		`C:\bin\storepack.exe`:                       false, // a Windows path is not split on Linux
		"storepack.exe":                              true,
		"docker-storepack":                           false,
		"/root/.docker/cli-plugins/docker-storepack": false,
		"storepack-frontend":                         false,
	} {
		if got := isStandaloneName(arg0); got != want {
			t.Errorf("isStandaloneName(%q) = %v, want %v", arg0, got, want)
		}
	}
}
