package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/jackc/pgx/v5"
)

// Postgres is a PostgreSQL server on loopback, owned by the harness.
type Postgres struct {
	// Host and Port locate the server; it listens on 127.0.0.1 only.
	Host string
	Port int
	// User and Password are the superuser's credentials. Never log them.
	User     string
	Password string
}

// DSN returns a connection string for database on this server.
func (p *Postgres) DSN(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(p.User, p.Password),
		Host:     loopback(p.Port),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates an empty database and returns its DSN.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("creating database %s: %w", name, err)
	}
	return p.DSN(name), nil
}

// startPostgres initialises a throwaway cluster with the machine's
// PostgreSQL binaries and serves it on a free loopback port. PostgreSQL
// refuses to run as root, so as root it runs as the postgres user.
func (e *Env) startPostgres(ctx context.Context) error {
	initdb, err := postgresBinary("initdb")
	if err != nil {
		return err
	}
	server, err := postgresBinary("postgres")
	if err != nil {
		return err
	}
	cred, err := postgresCredential()
	if err != nil {
		return err
	}
	password, err := randomHex(16)
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}

	dir := filepath.Join(e.Dir, "postgres")
	data, socket := filepath.Join(dir, "data"), filepath.Join(dir, "socket")
	pwfile := filepath.Join(dir, "pwfile")
	for _, d := range []string{dir, socket} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating PostgreSQL directory: %w", err)
		}
	}
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing PostgreSQL password file: %w", err)
	}
	if cred != nil {
		// The postgres user must reach its files through the state dir.
		if err := os.Chmod(e.Dir, 0o755); err != nil {
			return fmt.Errorf("opening state directory to postgres: %w", err)
		}
		for _, f := range []string{dir, socket, pwfile} {
			if err := os.Chown(f, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("handing %s to postgres: %w", f, err)
			}
		}
	}

	cmd := exec.CommandContext(ctx, initdb, "-D", data, "-U", "postgres",
		"--pwfile="+pwfile, "--auth=scram-sha-256", "--encoding=UTF8", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("running initdb: %w: %s", err, out)
	}
	if err := os.Remove(pwfile); err != nil {
		return fmt.Errorf("removing PostgreSQL password file: %w", err)
	}

	p, err := startProcess(e.Dir, command{name: "postgres", bin: server, cred: cred,
		args: []string{"-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", socket,
			// Throwaway data: durability buys nothing and costs test time.
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=200"},
		secrets: []string{password}})
	if err != nil {
		return err
	}
	e.processes = append(e.processes, p)
	e.Postgres = &Postgres{Host: "127.0.0.1", Port: port, User: "postgres", Password: password}
	return p.waitFor(ctx, startTimeout, func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, e.Postgres.DSN("postgres"))
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
}

func postgresBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) == 0 {
		return "", fmt.Errorf("%w: PostgreSQL's %s is not installed; run "+
			"`apt-get install postgresql` (make deps does)", ErrMissingBinary, name)
	}
	return matches[len(matches)-1], nil
}

// postgresCredential returns the postgres user's credential when running as
// root, and nil otherwise.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running PostgreSQL as root needs a postgres user: %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
