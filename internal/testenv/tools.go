package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrMissingBinary reports that a pinned component has not been built yet.
// Its message names the command that builds it.
var ErrMissingBinary = errors.New("component binary not built")

// RepoRoot finds the Pleura checkout containing the working directory, so
// tests run from any package directory find hack/ and config/.
func RepoRoot() (string, error) {
	if root := os.Getenv("PLEURA_ROOT"); root != "" {
		return root, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "tools.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding repository root: no hack/tools.sh above the " +
				"working directory; set PLEURA_ROOT to the checkout")
		}
		dir = parent
	}
}

// toolPath asks hack/tools.sh, the one place that knows versions and cache
// layout, where a component's binary lives, and checks that it is built.
func toolPath(root, component string) (string, error) {
	out, err := runTools(root, "path", component)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(out); err != nil {
		return "", fmt.Errorf("%w: %s is not at %s; run `make tools` (or "+
			"`hack/tools.sh build %s`) first", ErrMissingBinary, component, out, component)
	}
	return out, nil
}

// envtestAssets returns the directory holding etcd and kube-apiserver for
// envtest, after checking both are built.
func envtestAssets(root string) (string, error) {
	for _, c := range []string{"etcd", "kube-apiserver"} {
		if _, err := toolPath(root, c); err != nil {
			return "", err
		}
	}
	return runTools(root, "assets")
}

func runTools(root string, args ...string) (string, error) {
	var stderr bytes.Buffer
	script := filepath.Join(root, "hack", "tools.sh")
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("running hack/tools.sh %s: %w: %s",
			strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// moduleDir returns where the Go module cache holds a dependency of the
// root module, for files shipped inside modules (cert-manager's CRDs).
func moduleDir(root, module string) (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			stderr = string(ee.Stderr)
		}
		return "", fmt.Errorf("locating module %s: %w: %s", module, err, stderr)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("locating module %s: not in the module cache; run `go mod download`",
			module)
	}
	return dir, nil
}
