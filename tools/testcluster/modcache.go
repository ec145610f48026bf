package main

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"unicode"
)

// source is where a manager's main package is in the Go module cache, and its module@version.
type source struct{ dir, module string }

// providerSource finds, in the Go module cache, the source the binary was built from: for sigs.k8s.io/cluster-api/controlplane/kubeadm built from sigs.k8s.io/cluster-api
// v1.10.10, <GOMODCACHE>/sigs.k8s.io/cluster-api@v1.10.10/controlplane/kubeadm. Upstream's
// webhook manifests and RBAC are read from there at run time, so they always match the binary.
func providerSource(binary, mainPackage string) (source, error) {
	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		return source{}, fmt.Errorf("%s: no Go build information (build it with tools/capi-managers/build.sh): %w", binary, err)
	}
	if info.Path != mainPackage {
		return source{}, fmt.Errorf("%s is %s, want %s", binary, info.Path, mainPackage)
	}
	if info.Main.Version == "" || info.Main.Version == "(devel)" || !strings.HasPrefix(info.Path, info.Main.Path) {
		return source{}, fmt.Errorf("%s was not built from a released module (main module %s %s)", binary, info.Main.Path, info.Main.Version)
	}
	cache, err := goModCache()
	if err != nil {
		return source{}, err
	}
	dir := filepath.Join(cache, escapeModulePath(info.Main.Path)+"@"+info.Main.Version,
		strings.TrimPrefix(info.Path, info.Main.Path))
	if _, err := os.Stat(dir); err != nil {
		return source{}, fmt.Errorf("source of %s %s is not in the module cache (tools/capi-managers/build.sh puts it there): %w", info.Main.Path, info.Main.Version, err)
	}
	return source{dir: dir, module: info.Main.Path + "@" + info.Main.Version}, nil
}

func goModCache() (string, error) {
	if dir := os.Getenv("GOMODCACHE"); dir != "" {
		return dir, nil
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); dir != "" {
			return dir, nil
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the Go module cache: set GOMODCACHE: %w", err)
	}
	return filepath.Join(home, "go", "pkg", "mod"), nil // go's default without GOPATH
}

// escapeModulePath is the module cache's spelling of a module path: each upper-case letter
// becomes '!' and its lower case, so that case-insensitive file systems keep paths apart.
func escapeModulePath(path string) string {
	var b strings.Builder
	for _, r := range path {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
