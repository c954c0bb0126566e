package testenv

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/go-logr/logr"
	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func init() {
	// envtest logs through controller-runtime; this package's tests read
	// component logs from files instead.
	ctrllog.SetLogger(logr.Discard())
}

// certificateReadyBound is how long a leaf certificate may take from
// creation to Ready on a 2-core machine; it took about 5 seconds when
// measured.
const certificateReadyBound = 60 * time.Second

// TestStack starts the whole local stack once and proves each component
// really works: the API server stores a Namespace, cert-manager's
// controllers issue a CA-signed Certificate, Vault's transit engine and
// Kubernetes auth serve, PostgreSQL accepts a database. Stop leaves no
// process behind.
func TestStack(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	env, err := Start(ctx, Options{ControllerManager: true, Vault: true,
		CertManager: true, Postgres: true})
	g.Expect(err).NotTo(HaveOccurred())
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = env.Stop()
		}
	})

	scheme := runtime.NewScheme()
	g.Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	g.Expect(cmapi.AddToScheme(scheme)).To(Succeed())
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())

	t.Run("namespace", func(t *testing.T) {
		g := NewWithT(t)
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "selftest"}}
		g.Expect(c.Create(ctx, ns)).To(Succeed())
		got := &corev1.Namespace{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: "selftest"}, got)).To(Succeed())
		g.Expect(got.UID).NotTo(BeEmpty())
		// kube-controller-manager creates the default service account.
		g.Eventually(func() error {
			return c.Get(ctx, client.ObjectKey{Namespace: "selftest", Name: "default"},
				&corev1.ServiceAccount{})
		}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
	})

	t.Run("certificate", func(t *testing.T) {
		testCertificate(t, ctx, env, c)
	})
	t.Run("vault transit", func(t *testing.T) {
		testVaultTransit(t, ctx, env)
	})
	t.Run("vault secrets stay out of logs", func(t *testing.T) {
		g := NewWithT(t)
		log, err := os.ReadFile(filepath.Join(env.Dir, "vault.log"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(log)).To(ContainSubstring("Root Token: [redacted]"))
		g.Expect(string(log)).To(ContainSubstring("Unseal Key: [redacted]"))
		g.Expect(string(log)).NotTo(ContainSubstring(env.Vault.Token))
		info, err := os.Stat(filepath.Join(env.Dir, "vault.log"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o600)))
	})
	t.Run("vault kubernetes auth", func(t *testing.T) {
		testVaultKubernetesAuth(t, ctx, env)
	})
	t.Run("postgres", func(t *testing.T) {
		g := NewWithT(t)
		dsn, err := env.Postgres.CreateDatabase(ctx, "selftest")
		g.Expect(err).NotTo(HaveOccurred())
		conn, err := pgx.Connect(ctx, dsn)
		g.Expect(err).NotTo(HaveOccurred())
		defer conn.Close(ctx)
		var db string
		g.Expect(conn.QueryRow(ctx, "SELECT current_database()").Scan(&db)).To(Succeed())
		g.Expect(db).To(Equal("selftest"))
	})

	t.Run("stop leaves no process", func(t *testing.T) {
		g := NewWithT(t)
		children := childPIDs()
		g.Expect(children).NotTo(BeEmpty())
		g.Expect(env.Stop()).To(Succeed())
		stopped = true
		for _, pid := range children {
			g.Expect(syscall.Kill(pid, 0)).To(MatchError(syscall.ESRCH),
				"process %d outlived Stop", pid)
		}
		_, err := os.Stat(env.Dir)
		g.Expect(os.IsNotExist(err)).To(BeTrue(), "temporary state directory left behind")
	})
}

func testCertificate(t *testing.T, ctx context.Context, env *Env, c client.Client) {
	g := NewWithT(t)
	_, err := env.ApplyFile(ctx, c, "config/samples/local-ca-issuer.yaml")
	g.Expect(err).NotTo(HaveOccurred())

	cert := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: "portal-tls", Namespace: "selftest"},
		Spec: cmapi.CertificateSpec{
			SecretName: "portal-tls",
			DNSNames:   []string{"portal.selftest.svc"},
			IssuerRef: cmmeta.IssuerReference{Kind: cmapi.ClusterIssuerKind,
				Name: LocalCAIssuer, Group: "cert-manager.io"},
		},
	}
	g.Expect(c.Create(ctx, cert)).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := &cmapi.Certificate{}
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(cert), got)).To(Succeed())
		g.Expect(got.Status.Conditions).To(ContainElement(And(
			HaveField("Type", cmapi.CertificateConditionReady),
			HaveField("Status", cmmeta.ConditionTrue))))
	}, certificateReadyBound, 250*time.Millisecond).Should(Succeed())

	// The issued certificate chains to the local CA and names the host.
	secret := &corev1.Secret{}
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "selftest", Name: "portal-tls"},
		secret)).To(Succeed())
	leaf := parseCert(g, secret.Data[corev1.TLSCertKey])
	ca := parseCert(g, secret.Data["ca.crt"])
	g.Expect(ca.IsCA).To(BeTrue())
	g.Expect(ca.Subject.CommonName).To(Equal("Pleura local CA"))
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "portal.selftest.svc"})
	g.Expect(err).NotTo(HaveOccurred())
}

func parseCert(g Gomega, data []byte) *x509.Certificate {
	block, _ := pem.Decode(data)
	g.Expect(block).NotTo(BeNil(), "no PEM block")
	cert, err := x509.ParseCertificate(block.Bytes)
	g.Expect(err).NotTo(HaveOccurred())
	return cert
}

func testVaultTransit(t *testing.T, ctx context.Context, env *Env) {
	g := NewWithT(t)
	logical := env.Vault.Client.Logical()
	_, err := logical.WriteWithContext(ctx, "transit/keys/selftest",
		map[string]any{"type": "aes256-gcm96"})
	g.Expect(err).NotTo(HaveOccurred())
	key, err := logical.ReadWithContext(ctx, "transit/keys/selftest")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(key.Data["type"]).To(Equal("aes256-gcm96"))

	plaintext := base64.StdEncoding.EncodeToString([]byte("FEV1 2.31 L"))
	enc, err := logical.WriteWithContext(ctx, "transit/encrypt/selftest",
		map[string]any{"plaintext": plaintext})
	g.Expect(err).NotTo(HaveOccurred())
	ciphertext, _ := enc.Data["ciphertext"].(string)
	g.Expect(ciphertext).To(HavePrefix("vault:v1:"))
	g.Expect(ciphertext).NotTo(ContainSubstring(plaintext))
	dec, err := logical.WriteWithContext(ctx, "transit/decrypt/selftest",
		map[string]any{"ciphertext": ciphertext})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(dec.Data["plaintext"]).To(Equal(plaintext))
}

// testVaultKubernetesAuth logs in to Vault with a service account token
// issued by the local API server, which Vault reviews against it.
func testVaultKubernetesAuth(t *testing.T, ctx context.Context, env *Env) {
	g := NewWithT(t)
	logical := env.Vault.Client.Logical()
	_, err := logical.WriteWithContext(ctx, "auth/kubernetes/role/selftest", map[string]any{
		"bound_service_account_names":      []string{"default"},
		"bound_service_account_namespaces": []string{"selftest"},
		"token_policies":                   []string{"default"},
		"token_ttl":                        "5m",
	})
	g.Expect(err).NotTo(HaveOccurred())

	cs, err := kubernetes.NewForConfig(env.Config)
	g.Expect(err).NotTo(HaveOccurred())
	tr, err := cs.CoreV1().ServiceAccounts("selftest").CreateToken(ctx, "default",
		&authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	login := map[string]any{"role": "selftest", "jwt": tr.Status.Token}
	secret, err := logical.WriteWithContext(ctx, "auth/kubernetes/login", login)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(secret.Auth).NotTo(BeNil())
	g.Expect(secret.Auth.Metadata).To(HaveKeyWithValue("service_account_namespace", "selftest"))

	// A token for another namespace's account is refused by the role.
	_, err = cs.CoreV1().ServiceAccounts(VaultReviewerNamespace).Get(ctx,
		VaultReviewerServiceAccount, metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	other, err := cs.CoreV1().ServiceAccounts(VaultReviewerNamespace).CreateToken(ctx,
		VaultReviewerServiceAccount, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = logical.WriteWithContext(ctx, "auth/kubernetes/login",
		map[string]any{"role": "selftest", "jwt": other.Status.Token})
	g.Expect(err).To(HaveOccurred())
}

// childPIDs lists this process's direct children from /proc.
func childPIDs() []int {
	self := strconv.Itoa(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state, ppid, ...
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
		if f := strings.Fields(rest); len(f) > 1 && f[1] == self {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestMissingBinaryNamesTheFix checks that a stack started before its
// binaries are built fails with the command that builds them.
func TestMissingBinaryNamesTheFix(t *testing.T) {
	g := NewWithT(t)
	t.Setenv("PLEURA_CACHE", t.TempDir())
	_, err := Start(t.Context(), Options{})
	g.Expect(err).To(MatchError(ErrMissingBinary))
	g.Expect(err.Error()).To(ContainSubstring("make tools"))
	g.Expect(err.Error()).To(ContainSubstring("hack/tools.sh build etcd"))
}

// childEnvVar makes the test binary, re-run by TestKilledRunLeavesNoProcess,
// start a stack, print its component PIDs and wait to be killed.
const childEnvVar = "PLEURA_TESTENV_CHILD"

// TestKilledRunLeavesNoProcess kills a test process holding a whole stack
// with SIGKILL, as a go test timeout or a crash would, and checks that no
// component survives it.
func TestKilledRunLeavesNoProcess(t *testing.T) {
	if os.Getenv(childEnvVar) != "" {
		runChild(t)
		return
	}
	g := NewWithT(t)
	cmd := exec.CommandContext(t.Context(), os.Args[0],
		"-test.run=^TestKilledRunLeavesNoProcess$", "-test.v")
	// The child's state lives in a directory this test removes, since the
	// killed child cannot.
	// envtest makes temporary directories of its own: TMPDIR puts them
	// there too.
	dir := t.TempDir()
	cmd.Env = append(os.Environ(), childEnvVar+"="+dir, "TMPDIR="+dir)
	out, err := cmd.StdoutPipe()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cmd.Start()).To(Succeed())

	var pids []int
	scanner := bufio.NewScanner(out)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if rest, ok := strings.CutPrefix(line, "PIDS "); ok {
			for _, f := range strings.Fields(rest) {
				pid, err := strconv.Atoi(f)
				g.Expect(err).NotTo(HaveOccurred())
				pids = append(pids, pid)
			}
			break
		}
	}
	g.Expect(pids).NotTo(BeEmpty(), "the child never reported its components")
	g.Expect(cmd.Process.Kill()).To(Succeed())
	_ = cmd.Wait()
	g.Eventually(func() []int {
		var alive []int
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil && !zombie(pid) {
				alive = append(alive, pid)
			}
		}
		return alive
	}, 10*time.Second, 100*time.Millisecond).Should(BeEmpty())
}

func runChild(t *testing.T) {
	env, err := Start(t.Context(), Options{Vault: true, Dir: os.Getenv(childEnvVar)})
	if err != nil {
		t.Fatalf("starting child stack: %v", err)
	}
	defer env.Stop()
	var pids []string
	for _, pid := range childPIDs() {
		pids = append(pids, strconv.Itoa(pid))
	}
	fmt.Println("PIDS", strings.Join(pids, " "))
	<-t.Context().Done()
}

// zombie reports whether pid has exited but not been reaped (by init).
func zombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
	return strings.HasPrefix(rest, "Z")
}

func TestRedactLine(t *testing.T) {
	cases := map[string]struct {
		// line is what the component wrote; want is what the log keeps.
		line, want string
	}{
		"secret anywhere": {"token=s3cr3t ok\n", "token=[redacted] ok\n"},
		"prefixed line":   {"  Unseal Key: abc=\n", "  Unseal Key: [redacted]\n"},
		"untouched":       {"listening on 127.0.0.1\n", "listening on 127.0.0.1\n"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			got := redactLine(tc.line, []string{"s3cr3t"}, []string{"Unseal Key:"})
			g.Expect(got).To(Equal(tc.want))
		})
	}
}
