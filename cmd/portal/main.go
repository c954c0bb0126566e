// Command portal runs a tenant's patient portal.
//
//	portal serve                     serve HTTPS and the operations port
//	portal admin-code -email ADDR    create the first admin and print a
//	                                 one-time enrolment code
//
// Configuration comes from PLEURA_* environment variables; see
// portal/config. Invalid configuration stops start-up naming each field.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pleura-dev/pleura/portal/app"
	"github.com/pleura-dev/pleura/portal/config"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "portal:", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, args []string) error {
	if len(args) == 0 {
		args = []string{"serve"}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "serve":
		return serve(ctx, log)
	case "admin-code":
		return adminCode(ctx, log, args[1:])
	}
	return fmt.Errorf("unknown subcommand %q: use serve or admin-code", args[0])
}

func serve(ctx context.Context, log *slog.Logger) error {
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Serve(ctx)
}

func adminCode(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("admin-code", flag.ContinueOnError)
	email := fs.String("email", "", "the first admin's email address (required)")
	name := fs.String("name", "Administrator", "the first admin's display name")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the code stays valid (max 72h)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *email == "" {
		return fmt.Errorf("-email: required")
	}
	if *ttl <= 0 || *ttl > 72*time.Hour {
		return fmt.Errorf("-ttl: must be between 1s and 72h")
	}
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	code, err := a.MintAdminCode(ctx, *email, *name, *ttl)
	if err != nil {
		return err
	}
	// The code goes to stdout for the person running the command, never to
	// the log.
	fmt.Printf("One-time enrolment code for the first admin (valid %s):\n%s\n", *ttl, code)
	fmt.Println("Open /enrol on the portal and enter it with a new password.")
	return nil
}
