package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/socflow/socflow/internal/codec"
)

// cmdCodecServer serves /encode and /decode with socflow's payload codec, for the Web UI
// (--ui-codec-endpoint) and `temporal --codec-endpoint URL --codec-auth 'Bearer TOKEN'`.
func cmdCodecServer(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("codec-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8089", "listen address")
	origins := fs.String("origins", "http://127.0.0.1:8233,http://localhost:8233", "Web UI origins allowed by CORS, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	keys := os.Getenv("SOCFLOW_CODEC_KEYS")
	if keys == "" {
		return errors.New("SOCFLOW_CODEC_KEYS is not set: name the codec key file")
	}
	ring, err := codec.LoadKeyring(keys)
	if err != nil {
		return err
	}
	token := os.Getenv("SOCFLOW_CODEC_TOKEN")
	if token == "" {
		return errors.New("SOCFLOW_CODEC_TOKEN is not set: a codec server without a token would decrypt every history for anyone")
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", *addr, err)
	}
	srv := &http.Server{
		Handler:           codec.NewServer(codec.New(ring), codec.ServerOptions{Token: token, AllowedOrigins: strings.Split(*origins, ",")}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Fprintf(out, "codec server on http://%s (keys %v, active %s)\n", l.Addr(), ring.KeyIDs(), ring.Active())
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
