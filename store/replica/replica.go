// Package replica streams the control plane's SQLite database to a
// Litestream replica (a directory or any S3-compatible bucket) while it
// serves, and restores a database from one. It embeds Litestream as a
// library: no sidecar process, the same binary.
//
// Litestream takes over WAL checkpoints: it holds a read transaction so
// that no checkpoint moves pages out of the WAL before it has copied them,
// and checkpoints itself (passive at ~1000 pages, truncating past ~500 MB).
// The store must therefore be opened with its own automatic checkpoints off
// (store.Options.ExternalCheckpoints) while a Replicator runs.
package replica

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/s3"
)

// Config says where to replicate.
type Config struct {
	// URL is file:///dir or s3://bucket/path (an ?endpoint=… query or
	// AWS_ENDPOINT_URL_S3 selects an S3-compatible store such as Tigris or
	// MinIO).
	URL string
	// WorkDir holds Litestream's working files (LTX staging). It must be
	// outside the data dir; default: WorkDirFor(dbPath).
	WorkDir string
	// Env supplies AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and
	// AWS_ENDPOINT_URL_S3 (the process environment is not read).
	Env map[string]string
	Log *slog.Logger
}

// CheckURL tells whether u names a replica this package can use, with the
// reason when not.
func CheckURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return errors.New("use file:///dir or s3://bucket/path")
	}
	switch p.Scheme {
	case "file":
		if p.Host != "" && p.Host != "localhost" || !strings.HasPrefix(p.Path, "/") {
			return errors.New("a file replica needs an absolute path: file:///var/backups/candor")
		}
	case "s3":
		if p.Host == "" {
			return errors.New("an s3 replica needs a bucket: s3://bucket/path")
		}
	default:
		return errors.New("use file:///dir or s3://bucket/path")
	}
	return nil
}

// WorkDirFor is the default working directory for the database at dbPath:
// under the system's temporary directory, named after the database's
// absolute path so two control planes on one host do not share it. Losing
// it (a reboot) only makes Litestream start with a fresh snapshot.
func WorkDirFor(dbPath string) string {
	abs, err := filepath.Abs(dbPath)
	if err != nil {
		abs = dbPath
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(os.TempDir(), "candor-litestream-"+hex.EncodeToString(sum[:6]))
}

// newClient builds the Litestream client for cfg.URL.
func newClient(rawURL string, env map[string]string, log *slog.Logger) (litestream.ReplicaClient, error) {
	if err := CheckURL(rawURL); err != nil {
		return nil, err
	}
	p, _ := url.Parse(rawURL)
	if p.Scheme == "file" {
		c := file.NewReplicaClient(filepath.Clean(p.Path))
		c.SetLogger(log)
		return c, nil
	}
	lc, err := litestream.NewReplicaClientFromURL(rawURL)
	if err != nil {
		return nil, err
	}
	c, ok := lc.(*s3.ReplicaClient)
	if !ok {
		return nil, fmt.Errorf("unexpected replica client %T", lc)
	}
	c.SetLogger(log)
	// Credentials and endpoint come from the environment Candor was given,
	// with the names the AWS tools (and `fly storage create`) use.
	if v := env["AWS_ACCESS_KEY_ID"]; v != "" {
		c.AccessKeyID = v
	}
	if v := env["AWS_SECRET_ACCESS_KEY"]; v != "" {
		c.SecretAccessKey = v
	}
	if v := env["AWS_REGION"]; v != "" && p.Query().Get("region") == "" {
		c.Region = v
	}
	if c.Endpoint == "" {
		if v := firstNonEmpty(env["AWS_ENDPOINT_URL_S3"], env["AWS_ENDPOINT_URL"]); v != "" {
			c.Endpoint, _ = litestream.EnsureEndpointScheme(v)
			// Tigris serves virtual-host buckets; MinIO and most others
			// need path-style addressing.
			c.ForcePathStyle = !litestream.IsTigrisEndpoint(c.Endpoint)
		}
	}
	if c.Region == "" && c.Endpoint != "" {
		c.Region = "auto"
	}
	return c, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// Replicator streams one database to its replica until Close.
type Replicator struct {
	store  *litestream.Store
	dbPath string
}

// Start begins replicating the database at dbPath (which must exist, in WAL
// mode). It returns once the replica client is initialised and Litestream
// watches the database; the first snapshot is uploaded in the background.
func Start(ctx context.Context, dbPath string, cfg Config) (*Replicator, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "litestream")
	client, err := newClient(cfg.URL, cfg.Env, log)
	if err != nil {
		return nil, fmt.Errorf("--replicate-to=%q: %w", Redact(cfg.URL), err)
	}
	work := cfg.WorkDir
	if work == "" {
		work = WorkDirFor(dbPath)
	}
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, fmt.Errorf("litestream working directory %s: %w", work, err)
	}
	db := litestream.NewDB(dbPath)
	db.SetMetaPath(work)
	r := litestream.NewReplicaWithClient(db, client)
	db.Replica = r
	if fc, ok := client.(*file.ReplicaClient); ok {
		fc.Replica = r
	}
	st := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	st.Logger = log
	db.SetLogger(log)
	if err := st.Open(ctx); err != nil {
		return nil, fmt.Errorf("start replication to %s: %w", Redact(cfg.URL), err)
	}
	// The first sync now rather than at the monitor's first tick: it takes
	// Litestream's read lock before the application writes on, and a
	// control plane stopped within a second still leaves a replica.
	if err := db.Sync(ctx); err != nil {
		st.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("start replication to %s: %w", Redact(cfg.URL), err)
	}
	return &Replicator{store: st, dbPath: dbPath}, nil
}

// Sync copies every committed transaction to the replica and returns once
// the replica holds it.
func (r *Replicator) Sync(ctx context.Context) error {
	_, err := r.store.SyncDB(ctx, r.dbPath, true)
	return err
}

// Close makes a last sync (bounded by Litestream's shutdown timeout) and
// stops. Call it after the application closed its own connections.
func (r *Replicator) Close(ctx context.Context) error {
	return r.store.Close(ctx)
}

// Restore writes the latest database of the replica at rawURL to outPath,
// which must not exist.
func Restore(ctx context.Context, rawURL string, env map[string]string, outPath string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client, err := newClient(rawURL, env, log)
	if err != nil {
		return fmt.Errorf("--from-replica=%q: %w", Redact(rawURL), err)
	}
	if err := client.Init(ctx); err != nil {
		return fmt.Errorf("--from-replica=%q: %w", Redact(rawURL), err)
	}
	r := litestream.NewReplicaWithClient(nil, client)
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = outPath
	opt.IntegrityCheck = litestream.IntegrityCheckQuick
	start := time.Now()
	if err := r.Restore(ctx, opt); err != nil {
		if errors.Is(err, litestream.ErrTxNotAvailable) || errors.Is(err, litestream.ErrNoSnapshots) {
			return fmt.Errorf("--from-replica=%q holds no database yet (was the control plane started with --replicate-to this URL?)", Redact(rawURL))
		}
		return fmt.Errorf("restore from %s: %w", Redact(rawURL), err)
	}
	log.Info("restored from replica", "replica", Redact(rawURL), "took", time.Since(start))
	return nil
}

// Redact drops credentials a URL might carry (s3://key:secret@bucket).
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	p.User = nil
	return p.String()
}
