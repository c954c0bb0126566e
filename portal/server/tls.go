package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CertReloader serves the key pair on disk and picks up a renewed pair
// (cert-manager rewrites the Secret's files) without a restart.
type CertReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	// CheckEvery bounds how often the files are looked at.
	CheckEvery time.Duration

	mu        sync.Mutex
	cert      *tls.Certificate
	certStamp string
	checked   time.Time
}

// NewCertReloader loads the pair once, failing if it is unusable.
func NewCertReloader(certFile, keyFile string, log *slog.Logger) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile, log: log,
		CheckEvery: time.Second}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *CertReloader) stamp() string {
	var s string
	for _, f := range []string{r.certFile, r.keyFile} {
		if st, err := os.Stat(f); err == nil {
			s += fmt.Sprintf("%d/%d;", st.ModTime().UnixNano(), st.Size())
		}
	}
	return s
}

func (r *CertReloader) reload() error {
	stamp := r.stamp()
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("loading TLS key pair %s, %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.certStamp = &c, stamp
	return nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= r.CheckEvery {
		r.checked = time.Now()
		if r.stamp() != r.certStamp {
			// A half-written pair fails to load; keep serving the old one
			// and try again on a later handshake.
			if err := r.reload(); err != nil {
				r.log.Error("Reloading TLS certificate failed; serving the previous one",
					"err", err)
			} else {
				r.log.Info("Reloaded TLS certificate")
			}
		}
	}
	return r.cert, nil
}

// TLSConfig is the portal's TLS configuration: TLS 1.3 only.
func (r *CertReloader) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		MaxVersion:     tls.VersionTLS13,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}
