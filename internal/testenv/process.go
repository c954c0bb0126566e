package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long a component gets to exit after SIGTERM before the
// whole process group is killed.
const stopGrace = 10 * time.Second

// process is one component running as a child in its own process group, with
// its output in a log file. The child is killed if this process dies first.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// command describes a component to start.
type command struct {
	// name names the component and its log, logDir/name.log.
	name string
	// bin and args are what to run.
	bin  string
	args []string
	// env is added to this process's environment.
	env []string
	// cred, when not nil, runs the child as another user.
	cred *syscall.Credential
	// secrets are values never to be written to the log, and
	// secretPrefixes start lines whose remainder is never written (Vault's
	// dev banner prints the root token and unseal key).
	secrets        []string
	secretPrefixes []string
}

// startProcess starts c with its output, redacted, in logDir/c.name.log
// (mode 0600: component logs may hold addresses and identifiers).
func startProcess(logDir string, c command) (*process, error) {
	logPath := filepath.Join(logDir, c.name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s log: %w", c.name, err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("creating %s output pipe: %w", c.name, err)
	}

	cmd := exec.Command(c.bin, c.args...)
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.Env = append(os.Environ(), c.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: c.cred,
	}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		logFile.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", c.name, c.bin, err)
	}
	go copyRedacted(logFile, pr, c.secrets, c.secretPrefixes)

	p := &process{name: c.name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// copyRedacted copies lines from r to w until r ends, replacing every secret
// and the rest of every line that starts with a secret prefix.
func copyRedacted(w io.WriteCloser, r io.ReadCloser, secrets, prefixes []string) {
	defer w.Close()
	defer r.Close()
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			_, _ = io.WriteString(w, redactLine(line, secrets, prefixes))
		}
		if err != nil {
			return
		}
	}
}

func redactLine(line string, secrets, prefixes []string) string {
	for _, s := range secrets {
		if s != "" {
			line = strings.ReplaceAll(line, s, "[redacted]")
		}
	}
	trimmed := strings.TrimLeft(line, " \t")
	for _, p := range prefixes {
		if strings.HasPrefix(trimmed, p) {
			return line[:len(line)-len(trimmed)] + p + " [redacted]\n"
		}
	}
	return line
}

// exited reports whether the process has already ended, with its error.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, fmt.Errorf("%s exited: %v; see %s", p.name, p.err, p.logPath)
	default:
		return false, nil
	}
}

// stop ends the process group: SIGTERM, then SIGKILL after stopGrace.
func (p *process) stop() error {
	if p == nil || p.cmd.Process == nil {
		return nil
	}
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-p.done
	}
	// Reap anything the component left in its group.
	_ = syscall.Kill(pgid, syscall.SIGKILL)
	return nil
}

// waitFor polls ready until it succeeds, the process exits, or the timeout
// passes; the error names the component and its log.
func (p *process) waitFor(ctx context.Context, timeout time.Duration,
	ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if gone, err := p.exited(); gone {
			return err
		}
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %w; see %s", p.name, timeout,
				errors.Join(ctx.Err(), last), p.logPath)
		case <-tick.C:
		}
	}
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func loopback(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
