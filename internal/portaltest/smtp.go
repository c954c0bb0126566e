package portaltest

import (
	"io"
	"net"
	"sync"

	"github.com/emersion/go-smtp"
)

// Mail is one message the test SMTP server received.
type Mail struct {
	From string
	To   []string
	Data string
}

// SMTPServer is a real SMTP server on loopback that keeps every message.
type SMTPServer struct {
	// Addr is host:port.
	Addr string

	mu    sync.Mutex
	mail  []Mail
	close func() error
}

// Messages returns what arrived so far.
func (s *SMTPServer) Messages() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mail...)
}

// StartSMTP serves SMTP on a loopback port until Close.
func StartSMTP() (*SMTPServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &SMTPServer{Addr: ln.Addr().String()}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: s}, nil
	}))
	srv.Domain = "localhost"
	go func() { _ = srv.Serve(ln) }()
	s.close = srv.Close
	return s, nil
}

// Close stops the server.
func (s *SMTPServer) Close() error { return s.close() }

type smtpSession struct {
	srv *SMTPServer
	cur Mail
}

func (s *smtpSession) Reset()        { s.cur = Mail{} }
func (s *smtpSession) Logout() error { return nil }

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.cur.From = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = string(b)
	s.srv.mu.Lock()
	s.srv.mail = append(s.srv.mail, s.cur)
	s.srv.mu.Unlock()
	return nil
}
