package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"candor/store"
	"candor/store/replica"
)

// A backup is one tar file (gzip-compressed when its name ends in .gz or
// .tgz) holding, in this order:
//
//	candor-backup.json  the manifest: format, version, time, row counts
//	candor.db           a consistent snapshot of the database (VACUUM INTO)
//	secret.key          the key of tenant secrets, unless CANDOR_SECRET_KEY is set
//	recordings/…        every interview recording
//
// The snapshot is taken first, then the recordings are copied: a recording
// is renamed into place before the database refers to it, so every
// recording the snapshot names is in the backup.
const (
	backupManifestName = "candor-backup.json"
	backupFormat       = 1
	dbFileName         = "candor.db"
	secretKeyFileName  = store.SecretKeyFile
	recordingsDirName  = "recordings"
)

// backupManifest is the first entry of a backup.
type backupManifest struct {
	Format       int               `json:"format"`
	Version      string            `json:"candor_version"`
	CreatedAt    time.Time         `json:"created_at"`
	SecretKey    bool              `json:"secret_key_included"`
	Fingerprint  store.Fingerprint `json:"database"`
	Recordings   int               `json:"recordings"`
	RecordingsMB float64           `json:"recordings_mb"`
}

// runBackup serves `candor backup --data DIR --to FILE`.
func runBackup(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("candor backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", firstNonEmpty(env["CANDOR_DATA"], "./data"), "data directory of the control plane (env CANDOR_DATA)")
	to := fs.String("to", "", "backup file to write (.tar, or .tar.gz/.tgz to compress)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("--to is required: the backup file to write, e.g. --to candor-backup.tar.gz")
	}
	start := time.Now()
	m, err := writeBackup(ctx, *data, *to, env["CANDOR_SECRET_KEY"] != "", version, progressTo(stderr))
	if err != nil {
		return err
	}
	st, err := os.Stat(*to)
	if err != nil {
		return fmt.Errorf("the backup was written but cannot be read back: %w", err)
	}
	fmt.Fprintf(stdout, "backup written to %s: %d transcript entries, %d recordings (%.1f MB), %.1f MB in all, in %s\n",
		*to, m.Fingerprint.Entries(), m.Recordings, m.RecordingsMB, float64(st.Size())/1e6, time.Since(start).Round(time.Millisecond))
	if m.SecretKey {
		fmt.Fprintln(stdout, "the backup holds the secret key file (secret.key): keep it as safe as the key itself")
	} else {
		fmt.Fprintln(stdout, "CANDOR_SECRET_KEY is set, so the backup holds no key: keep that value, a restore needs it to decrypt tenant secrets and keep invite links")
	}
	return nil
}

// progressTo returns a progress printer writing one line per step to w.
func progressTo(w io.Writer) func(format string, args ...any) {
	return func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
}

// writeBackup writes the backup of dataDir to dst. With keyFromEnv the
// secret key file is left out (the key lives in the environment).
func writeBackup(ctx context.Context, dataDir, dst string, keyFromEnv bool, ver string, progress func(string, ...any)) (backupManifest, error) {
	dbPath := filepath.Join(dataDir, dbFileName)
	if _, err := os.Stat(dbPath); err != nil {
		return backupManifest{}, fmt.Errorf("--data=%q holds no Candor database (%s): point --data at the control plane's data directory", dataDir, dbFileName)
	}
	if _, err := os.Stat(dst); err == nil {
		return backupManifest{}, fmt.Errorf("--to=%q exists already: choose a new file name (a backup never overwrites one)", dst)
	}
	// The snapshot goes beside the backup file, not into the data dir.
	work, err := os.MkdirTemp(filepath.Dir(dst), ".candor-backup-*")
	if err != nil {
		return backupManifest{}, fmt.Errorf("--to=%q: cannot write in its directory: %w", dst, err)
	}
	defer os.RemoveAll(work)

	t0 := time.Now()
	progress("snapshotting the database…")
	snap := filepath.Join(work, dbFileName)
	if err := store.Snapshot(ctx, dbPath, snap); err != nil {
		return backupManifest{}, err
	}
	fp, err := store.FingerprintOf(ctx, snap)
	if err != nil {
		return backupManifest{}, err
	}
	snapInfo, err := os.Stat(snap)
	if err != nil {
		return backupManifest{}, err
	}
	progress("database snapshot: %d transcript entries, %.1f MB, in %s", fp.Entries(), float64(snapInfo.Size())/1e6, time.Since(t0).Round(time.Millisecond))

	recs, recBytes, err := listRecordings(filepath.Join(dataDir, recordingsDirName))
	if err != nil {
		return backupManifest{}, err
	}
	m := backupManifest{
		Format: backupFormat, Version: ver, CreatedAt: time.Now().UTC().Truncate(time.Second),
		Fingerprint: fp, Recordings: len(recs), RecordingsMB: float64(recBytes) / 1e6,
	}
	var key []byte
	if !keyFromEnv {
		key, err = os.ReadFile(filepath.Join(dataDir, secretKeyFileName))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return backupManifest{}, fmt.Errorf("read the secret key file: %w", err)
		}
		m.SecretKey = err == nil
	}

	tmp := filepath.Join(work, "backup.part")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return backupManifest{}, fmt.Errorf("create the backup file: %w", err)
	}
	defer f.Close()
	var out io.Writer = f
	var gz *gzip.Writer
	if strings.HasSuffix(dst, ".gz") || strings.HasSuffix(dst, ".tgz") {
		gz, _ = gzip.NewWriterLevel(f, gzip.BestSpeed)
		out = gz
	}
	tw := tar.NewWriter(out)
	mb, _ := json.MarshalIndent(m, "", "  ")
	if err := tarBytes(tw, backupManifestName, mb, m.CreatedAt); err != nil {
		return backupManifest{}, err
	}
	if err := tarFile(ctx, tw, dbFileName, snap); err != nil {
		return backupManifest{}, err
	}
	if m.SecretKey {
		if err := tarBytes(tw, secretKeyFileName, key, m.CreatedAt); err != nil {
			return backupManifest{}, err
		}
	}
	var done int64
	lastReport := time.Now()
	for i, rel := range recs {
		if err := ctx.Err(); err != nil {
			return backupManifest{}, err
		}
		src := filepath.Join(dataDir, recordingsDirName, rel)
		err := tarFile(ctx, tw, path.Join(recordingsDirName, filepath.ToSlash(rel)), src)
		if errors.Is(err, os.ErrNotExist) {
			continue // replaced by a newer upload of its segment meanwhile
		}
		if err != nil {
			return backupManifest{}, err
		}
		if st, err := os.Stat(src); err == nil {
			done += st.Size()
		}
		if time.Since(lastReport) > 2*time.Second || i == len(recs)-1 {
			progress("recordings: %d/%d files, %.1f/%.1f MB", i+1, len(recs), float64(done)/1e6, float64(recBytes)/1e6)
			lastReport = time.Now()
		}
	}
	if err := tw.Close(); err != nil {
		return backupManifest{}, fmt.Errorf("write the backup: %w", err)
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return backupManifest{}, fmt.Errorf("write the backup: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return backupManifest{}, fmt.Errorf("write the backup: %w", err)
	}
	if err := f.Close(); err != nil {
		return backupManifest{}, fmt.Errorf("write the backup: %w", err)
	}
	// Link, not rename: a backup file that appeared meanwhile is not replaced.
	if err := os.Link(tmp, dst); err != nil {
		return backupManifest{}, fmt.Errorf("put the backup at %s: %w", dst, err)
	}
	return m, nil
}

// listRecordings returns every regular file under dir, relative to it, and
// their total size. No dir is no recordings.
func listRecordings(dir string) ([]string, int64, error) {
	var out []string
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") {
			return nil // directories, and uploads still in progress (.upload-*)
		}
		info, err := d.Info()
		if err != nil {
			return nil // gone meanwhile
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		total += info.Size()
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list recordings: %w", err)
	}
	return out, total, nil
}

func tarBytes(tw *tar.Writer, name string, b []byte, mod time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), ModTime: mod, Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("write the backup: %w", err)
	}
	if _, err := tw.Write(b); err != nil {
		return fmt.Errorf("write the backup: %w", err)
	}
	return nil
}

// tarFile adds the file at src as name. The header carries the size of the
// open file, so a file that changes meanwhile cannot corrupt the archive
// (recordings never change in place: they are replaced by rename).
func tarFile(ctx context.Context, tw *tar.Writer, name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("write the backup: %w", err)
	}
	if _, err := io.Copy(tw, io.LimitReader(ctxReader{ctx, f}, st.Size())); err != nil {
		return fmt.Errorf("write the backup (%s): %w", name, err)
	}
	return nil
}

// ctxReader stops a long copy when ctx ends (Ctrl-C).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// runRestore serves `candor restore --from FILE --data DIR` and
// `candor restore --from-replica URL --data DIR`.
func runRestore(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("candor restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "backup file written by candor backup")
	fromReplica := fs.String("from-replica", "", "Litestream replica URL (file:///dir or s3://bucket/path) to restore the database from")
	data := fs.String("data", firstNonEmpty(env["CANDOR_DATA"], "./data"), "data directory to restore into (env CANDOR_DATA)")
	force := fs.Bool("force", false, "restore even though --data is not empty: its current content is moved aside to DIR.replaced-<time>, not deleted")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*from == "") == (*fromReplica == "") {
		return errors.New("give exactly one of --from FILE (a backup) or --from-replica URL (a Litestream replica)")
	}
	empty, err := dirEmpty(*data)
	if err != nil {
		return fmt.Errorf("--data=%q: %w", *data, err)
	}
	if !empty && !*force {
		return fmt.Errorf("--data=%q is not empty: restore into a new directory, or add --force to move its content aside first", *data)
	}
	// Everything is restored into a directory beside the target and moved
	// into place only once it is complete and checked: a bad backup leaves
	// --data as it was.
	parent := filepath.Dir(filepath.Clean(*data))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("--data=%q: %w", *data, err)
	}
	work, err := os.MkdirTemp(parent, "."+filepath.Base(filepath.Clean(*data))+".restoring-*")
	if err != nil {
		return fmt.Errorf("--data=%q: cannot write beside it: %w", *data, err)
	}
	defer os.RemoveAll(work)
	progress := progressTo(stderr)
	start := time.Now()
	var keyNote string
	var manifest backupManifest
	if *from != "" {
		manifest, err = extractBackup(ctx, *from, work, progress)
		if err != nil {
			return err
		}
		if !manifest.SecretKey {
			keyNote = "the backup holds no secret key: start Candor with the CANDOR_SECRET_KEY it was taken with"
		}
	} else {
		if err := restoreReplica(ctx, *fromReplica, env, filepath.Join(work, dbFileName), progress); err != nil {
			return err
		}
		keyNote = "a replica holds the database only: bring secret.key (or CANDOR_SECRET_KEY) and the recordings from your backups"
	}
	dbPath := filepath.Join(work, dbFileName)
	progress("checking the database…")
	if err := store.CheckIntegrity(ctx, dbPath); err != nil {
		return fmt.Errorf("the restored database fails its check, --data is unchanged: %w", err)
	}
	fp, err := store.FingerprintOf(ctx, dbPath)
	if err != nil {
		return err
	}
	if *from != "" && (fp.Transcripts != manifest.Fingerprint.Transcripts || fp.Entries() != manifest.Fingerprint.Entries()) {
		return fmt.Errorf("--from=%q is damaged: its database does not match its manifest (%d entries, want %d); --data is unchanged", *from, fp.Entries(), manifest.Fingerprint.Entries())
	}
	if err := moveIntoPlace(work, *data, empty, progress); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored into %s in %s: %d transcript entries, %d interviews, transcripts sha256 %s\n",
		*data, time.Since(start).Round(time.Millisecond), fp.Entries(), fp.Rows["interviews"], fp.Transcripts)
	if keyNote != "" {
		fmt.Fprintln(stdout, keyNote)
	}
	return nil
}

func dirEmpty(dir string) (bool, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return len(des) == 0, nil
}

// moveIntoPlace makes work the data dir. A non-empty data dir is moved
// aside first, never deleted.
func moveIntoPlace(work, data string, empty bool, progress func(string, ...any)) error {
	if empty {
		if err := os.Remove(data); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("--data=%q: %w", data, err)
		}
	} else {
		aside := filepath.Clean(data) + ".replaced-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(data, aside); err != nil {
			return fmt.Errorf("--data=%q: move its content aside: %w", data, err)
		}
		progress("the former content of %s is in %s", data, aside)
	}
	if err := os.Rename(work, data); err != nil {
		return fmt.Errorf("--data=%q: %w", data, err)
	}
	return nil
}

// extractBackup unpacks the backup file src into dir, checking every name:
// only the entries a backup holds, no absolute paths, no "..", no links.
func extractBackup(ctx context.Context, src, dir string, progress func(string, ...any)) (backupManifest, error) {
	f, err := os.Open(src)
	if err != nil {
		return backupManifest{}, fmt.Errorf("--from: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return backupManifest{}, fmt.Errorf("--from: %w", err)
	}
	counted := &countingReader{r: f}
	var in io.Reader = counted
	var head [2]byte
	if n, _ := io.ReadFull(f, head[:]); n == 2 && head[0] == 0x1f && head[1] == 0x8b {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return backupManifest{}, err
		}
		gz, err := gzip.NewReader(counted)
		if err != nil {
			return backupManifest{}, fmt.Errorf("--from=%q is not a Candor backup: %w", src, err)
		}
		in = gz
	} else if _, err := f.Seek(0, io.SeekStart); err != nil {
		return backupManifest{}, err
	}
	notBackup := func(why string) error {
		return fmt.Errorf("--from=%q is not a Candor backup (%s); --data is unchanged", src, why)
	}
	tr := tar.NewReader(in)
	var m backupManifest
	var sawDB bool
	lastReport := time.Now()
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return backupManifest{}, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return backupManifest{}, notBackup(err.Error())
		}
		if i == 0 {
			if h.Name != backupManifestName || h.Size > 1<<20 {
				return backupManifest{}, notBackup("it does not start with " + backupManifestName)
			}
			if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&m); err != nil || m.Format == 0 {
				return backupManifest{}, notBackup("unreadable manifest")
			}
			if m.Format > backupFormat {
				return backupManifest{}, fmt.Errorf("--from=%q was written by a newer Candor (backup format %d, this one reads %d): restore it with that version", src, m.Format, backupFormat)
			}
			continue
		}
		name := h.Name
		clean := path.Clean(name)
		allowed := clean == dbFileName || clean == secretKeyFileName || strings.HasPrefix(clean, recordingsDirName+"/")
		if h.Typeflag != tar.TypeReg || clean != name || path.IsAbs(name) || strings.Contains(name, "..") || !allowed {
			return backupManifest{}, notBackup(fmt.Sprintf("unexpected entry %q", name))
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return backupManifest{}, err
		}
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return backupManifest{}, notBackup(fmt.Sprintf("entry %q: %v", name, err))
		}
		_, err = io.Copy(out, tr)
		if err == nil {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return backupManifest{}, fmt.Errorf("restore %s: %w", name, err)
		}
		if !h.ModTime.IsZero() {
			_ = os.Chtimes(dst, h.ModTime, h.ModTime)
		}
		sawDB = sawDB || name == dbFileName
		if time.Since(lastReport) > 2*time.Second {
			progress("restoring: %.1f/%.1f MB read", float64(counted.n)/1e6, float64(st.Size())/1e6)
			lastReport = time.Now()
		}
	}
	if m.Format == 0 {
		return backupManifest{}, notBackup("it is empty")
	}
	if !sawDB {
		return backupManifest{}, notBackup("it holds no database")
	}
	progress("restoring: %.1f MB read", float64(counted.n)/1e6)
	return m, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// restoreReplica writes the replica's latest database to dbPath.
func restoreReplica(ctx context.Context, rawURL string, env map[string]string, dbPath string, progress func(string, ...any)) error {
	progress("restoring the database from %s…", replica.Redact(rawURL))
	return replica.Restore(ctx, rawURL, env, dbPath, nil)
}
