package main_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/pleura-dev/pleura/internal/portaltest"
	"github.com/pleura-dev/pleura/internal/testenv"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestBinaryServesSignInOverTLS13 builds cmd/portal, mints the first
// admin's code with the subcommand, and serves the sign-in page over
// TLS 1.3 against real PostgreSQL and Vault.
func TestBinaryServesSignInOverTLS13(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "portal")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building portal: %v\n%s", err, out)
	}

	t.Run("invalid configuration stops start-up naming the field", func(t *testing.T) {
		g := NewWithT(t)
		cmd := exec.Command(bin, "serve")
		cmd.Env = []string{"PLEURA_DATABASE_DSN=postgres://u:secret@db/x"}
		out, err := cmd.CombinedOutput()
		g.Expect(err).To(HaveOccurred())
		g.Expect(string(out)).To(ContainSubstring("PLEURA_TENANT_FILE: required"))
		g.Expect(string(out)).To(ContainSubstring("PLEURA_TLS_CERT"))
		g.Expect(string(out)).NotTo(ContainSubstring("secret"))
	})

	env := testenv.StartForTest(t, testenv.Options{Vault: true, Postgres: true})
	portaltest.TransitKey(t, env, "cmd-data")
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	roots := portaltest.KeyPair(t, cert, key)
	listen, ops := freeAddr(t), freeAddr(t)
	_, port, _ := net.SplitHostPort(listen)
	vars := []string{
		"PLEURA_TENANT_FILE=" + portaltest.TenantFile(t, env, dir, "cmd", "cmd-data",
			portaltest.Policy()),
		"PLEURA_DATABASE_DSN=" + portaltest.Database(t, env, "cmd_portal"),
		"PLEURA_TLS_CERT=" + cert, "PLEURA_TLS_KEY=" + key,
		"PLEURA_VAULT_AUTH=token", "PLEURA_VAULT_TOKEN=" + env.Vault.Token,
		"PLEURA_LISTEN=" + listen, "PLEURA_OPS_LISTEN=" + ops,
		"PLEURA_PUBLIC_URL=https://localhost:" + port,
	}

	mint := exec.Command(bin, "admin-code", "-email", "first@north.example")
	mint.Env = vars
	out, err := mint.Output()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(out)).To(MatchRegexp(`(?m)^[A-Z2-7]{4}(-[A-Z2-7]{1,4})+$`))
	again := exec.Command(bin, "admin-code", "-email", "second@north.example")
	again.Env = vars
	out, err = again.CombinedOutput()
	g.Expect(err).To(HaveOccurred(), "only one first admin")
	g.Expect(string(out)).To(ContainSubstring("an admin already exists"))

	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serve := exec.CommandContext(ctx, bin, "serve")
	serve.Env = vars
	serve.Stdout, serve.Stderr = &logs, &logs
	g.Expect(serve.Start()).To(Succeed())

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}}}
	var page string
	g.Eventually(func() error {
		resp, err := client.Get("https://localhost:" + port + "/sign-in")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		page = string(b)
		g.Expect(resp.TLS.Version).To(Equal(uint16(tls.VersionTLS13)))
		return nil
	}).WithTimeout(60 * time.Second).Should(Succeed())
	g.Expect(page).To(ContainSubstring("<h1>Sign in</h1>"))
	resp, err := http.Get("http://" + ops + "/readyz")
	g.Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))

	g.Expect(serve.Process.Signal(syscall.SIGTERM)).To(Succeed())
	g.Expect(serve.Wait()).To(Succeed(), logs.String())
	// Nothing secret reached the log.
	for _, secret := range []string{env.Vault.Token, "first@north.example"} {
		g.Expect(logs.String()).NotTo(ContainSubstring(secret))
	}
	g.Expect(regexp.MustCompile(`password`).MatchString(logs.String())).To(BeFalse())
	_ = os.Remove(bin)
}
