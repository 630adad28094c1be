// Command bcemu serves the Business Central API emulator
// (connectors/businesscentral/bcemu) on 127.0.0.1 for demos and manual
// tests of `repricer sync bc`.
//
// The client secret the emulator accepts is read from BC_CLIENT_SECRET (or
// the file named by BC_CLIENT_SECRET_FILE); it defaults to "bcemu-secret".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/repricer/repricer/connectors/businesscentral/bcemu"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bcemu:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bcemu", flag.ContinueOnError)
	port := fs.Int("port", 8090, "port to listen on (127.0.0.1)")
	var opt bcemu.Options
	fs.StringVar(&opt.Tenant, "tenant", "tenant", "tenant")
	fs.StringVar(&opt.Environment, "environment", "production", "environment")
	fs.StringVar(&opt.Publisher, "publisher", "repricer", "API publisher")
	fs.StringVar(&opt.Group, "group", "contracts", "API group")
	fs.StringVar(&opt.CompanyID, "company", "11111111-2222-3333-4444-555555555555", "company id")
	fs.StringVar(&opt.ClientID, "client-id", "bcemu-client", "accepted client id")
	fs.DurationVar(&opt.TokenLifetime, "token-lifetime", time.Hour, "how long tokens are accepted")
	fs.IntVar(&opt.RateLimit, "rate-limit", 6000, "requests per window per user")
	fs.DurationVar(&opt.RateWindow, "rate-window", 5*time.Minute, "rate-limit window")
	fs.Uint64Var(&opt.Seed, "seed", 1, "fault-injection seed")
	fs.Float64Var(&opt.Faults.Throttle, "fault-429", 0, "fraction of requests answered 429")
	fs.Float64Var(&opt.Faults.ThrottleRetryAfter, "fault-429-retry-after", 0.5, "fraction of 429s with Retry-After")
	fs.Float64Var(&opt.Faults.Unavailable, "fault-503", 0, "fraction of requests answered 503")
	fs.Float64Var(&opt.Faults.DropAfterCommit, "fault-drop", 0, "fraction of writes dropped after commit")
	fs.DurationVar(&opt.Faults.RetryAfter, "retry-after", time.Second, "Retry-After of injected faults")
	fs.DurationVar(&opt.Faults.Latency, "latency", 0, "added latency per request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	secret, err := readSecret()
	if err != nil {
		return err
	}
	opt.ClientSecret = secret
	emu := bcemu.New(opt)
	o := emu.Options()

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	fmt.Printf("bcemu listening on %s\n  BC_BASE_URL=%s\n  BC_TOKEN_URL=%s%s\n  BC_TENANT=%s BC_ENVIRONMENT=%s BC_PUBLISHER=%s BC_GROUP=%s\n  BC_COMPANY_ID=%s BC_CLIENT_ID=%s\n",
		base, base, base, emu.TokenPath(), o.Tenant, o.Environment, o.Publisher, o.Group, o.CompanyID, o.ClientID)

	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func readSecret() (string, error) {
	if f := os.Getenv("BC_CLIENT_SECRET_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("reading BC_CLIENT_SECRET_FILE: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if s := os.Getenv("BC_CLIENT_SECRET"); s != "" {
		return s, nil
	}
	return "bcemu-secret", nil
}
