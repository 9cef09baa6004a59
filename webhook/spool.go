package webhook

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A spool is the write-ahead file of a receiver made [WithSpool]: a delivery is appended
// to it (one write) before the sender is answered, and a flusher goroutine moves what is
// appended into the Store in batches (one InsertBatch, so one transaction, per batch of up
// to spoolBatch) and hands each on (Notify). No request waits for a commit, and a burst
// costs one commit per batch instead of one per delivery.
//
// Each process spools to files of its own (segments), each locked (flock) while it is
// open. The current segment is truncated whenever all its records are handed on; past
// spoolRotate bytes a new one is started, and the old one is removed once all its records
// are handed on. So the files hold the current backlog and little more, even under a
// stream that never lets the backlog empty. A file whose lock can be taken was left by a
// process that stopped before flushing it (a crash): Resume stores its deliveries, which
// are then handed on with the other pending ones, and removes it.
//
// Records: a little-endian uint32 payload length, the payload's CRC-32C, the payload
// (spoolVersion, then endpoint, ID, event, header, body as uvarint-length-prefixed
// strings, the header as counts of keys and values, and ReceivedAt as a varint of Unix
// nanoseconds). A record cut short (a machine crash during its write: its sender was not
// answered) or corrupt ends the replay of its file, which is kept for inspection.
type spool struct {
	r      *Receiver
	dir    string
	limit  int64 // most bytes appended and not yet handed on
	rotate int64 // a segment's size past which the next one is started
	// retryRotate is the current segment's size before which no new segment is tried
	// again after one could not be made.
	retryRotate int64

	// ctx bounds the flusher's store and notify calls; Close cancels it when it gives up.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	cur      *segment   // the segment appended to
	old      []*segment // earlier segments with records not yet handed on
	queue    []spooled  // appended, not yet taken by the flusher
	pending  int64      // bytes appended and not handed on (queued or in the flusher's batch)
	appended int64      // deliveries appended, ever
	handed   int64      // of those, handed on (or dropped as invalid)
	flushing bool       // the flusher goroutine runs
	waiters  int        // goroutines in flushed: the flusher does not linger
	// kick ends the flusher's linger: a full batch is queued, or Flush waits.
	kick chan struct{}
	// progress is closed, and replaced, when handed grows or the flusher stops.
	progress chan struct{}
	closed   bool // Close was called: deliveries go to the store directly
	// closeDone is closed when the first Close has finished, with closeErr its result.
	closeDone chan struct{}
	closeErr  error
	broken    error // a failed write could not be undone: spooling is off
}

// segment is one spool file.
type segment struct {
	f    *os.File
	path string
	size int64 // bytes written
	left int   // records written and not yet handed on
}

// spooled is one delivery of the spool, and how far its hand-on got.
type spooled struct {
	d    Delivery
	seg  *segment
	size int64 // its record's bytes in the segment
	// stored: it is in the store, as d, and inserted says whether it was new; done: it is
	// handed on too (or was dropped as invalid).
	stored, inserted, done bool
}

const (
	spoolExt     = ".spool"
	spoolVersion = 1
	// zeroTime stands for a zero ReceivedAt, whose Unix nanoseconds are undefined.
	zeroTime = math.MinInt64
	// spoolBatch caps the deliveries the flusher hands to the store at once.
	spoolBatch = 256
	// spoolLinger is how long the flusher waits for a batch to fill before it stores a
	// smaller one, unless Flush is waiting.
	spoolLinger = 5 * time.Millisecond
	// spoolLimit is the backlog, in bytes of records, past which deliveries are stored
	// directly (as without a spool) until the flusher catches up.
	spoolLimit = 64 << 20
	// spoolRotate is the segment size past which the next segment is started.
	spoolRotate = 8 << 20
	// spoolRetryMin and spoolRetryMax bound the flusher's wait between attempts when the
	// store or the notify hook fails.
	spoolRetryMin = 50 * time.Millisecond
	spoolRetryMax = 5 * time.Second
)

var (
	errSpoolClosed = errors.New("spool closed")
	errSpoolFull   = errors.New("spool backlog full")
	// errSpoolCorrupt: a record's length or checksum is wrong before the file's end.
	errSpoolCorrupt = errors.New("corrupt record")
	castagnoli      = crc32.MakeTable(crc32.Castagnoli)
)

// WithSpool makes the receiver write each delivery to a spool file in dir (created if
// missing) before answering, instead of waiting for the store, and move deliveries from
// the file into the store in batches in the background, handing each on (Notify) once
// stored. A delivery answered 200 survives a crashed process (the file is written before
// the answer) but not, until it is flushed a few milliseconds later, a crashed machine:
// the file is not synced — as SQLite's WAL at synchronous=NORMAL, the SQL store's
// setting, is not; a Postgres commit is. Keep dir on storage the restarted process
// finds again (not a container's throw-away layer).
//
// What changes for the sender and the app:
//   - a redelivery is answered {"status":"accepted"} like a new delivery when it is
//     spooled: the store, which dedups it, is only reached later (it is still stored and
//     processed once);
//   - Stats counts Accepted and Duplicates when the flusher stores them;
//   - Store.List sees a delivery a few milliseconds after it was answered;
//   - deliveries go to the store directly (as without a spool) while the backlog holds
//     64 MiB, after [Receiver.Close], and when the file cannot be written;
//   - a delivery the store refuses as invalid (ErrInvalid; the built-in stores refuse
//     none that ServeHTTP accepts) has been answered 200 already: it is logged at Error
//     and dropped, where without a spool it would be answered 503;
//   - the handing on waits up to 5 ms for a batch to fill (not when Flush is waiting).
//
// A process that stops without Close (or whose Close runs out of time) leaves its backlog
// in the file; [Receiver.Resume], at the next start of a receiver of the endpoint on the
// same dir, stores what dead processes left and hands it on. Running receivers do not
// look for such files: until one starts, the deliveries wait there. Processes may
// share dir: each writes a file of its own, locked while the process runs. Only on
// systems with flock (Linux, macOS, the BSDs); elsewhere it is a construction error.
func WithSpool(dir string) Option {
	return func(r *Receiver) {
		if dir == "" {
			r.fail(errors.New("WithSpool: empty directory"))
		}
		r.spoolDir = dir
	}
}

// spoolPrefix is the start of the names of the spool files of an endpoint.
func spoolPrefix(endpoint string) string {
	sum := sha256.Sum256([]byte(endpoint))
	return "webhook-" + hex.EncodeToString(sum[:8]) + "-"
}

// openSpool creates the receiver's first spool segment in dir.
func openSpool(r *Receiver, dir string) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("WithSpool: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &spool{r: r, dir: dir, limit: spoolLimit, rotate: spoolRotate, ctx: ctx, cancel: cancel,
		progress: make(chan struct{}), kick: make(chan struct{}, 1)}
	seg, err := s.newSegment()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("WithSpool: %w", err)
	}
	s.cur = seg
	return s, nil
}

// newSegment creates and locks a new spool file: the endpoint's prefix, the process ID
// and a time stamp name it. It is made under another name and renamed once locked, so a
// Resume in another process never takes it, unlocked, for a dead process's file.
func (s *spool) newSegment() (*segment, error) {
	name := spoolPrefix(s.r.endpoint) + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + spoolExt
	path := filepath.Join(s.dir, name)
	f, err := os.OpenFile(path+".new", os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		os.Remove(path + ".new")
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		f.Close()
		os.Remove(path + ".new")
		return nil, err
	}
	return &segment{f: f, path: path}, nil
}

// wake ends the flusher's linger, if it lingers.
func (s *spool) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// signal wakes the goroutines waiting for progress; s.mu is held.
func (s *spool) signal() {
	close(s.progress)
	s.progress = make(chan struct{})
}

var recordPool = sync.Pool{New: func() any { return new([]byte) }}

// append writes d to the file and queues it for the flusher. On an error nothing is
// queued, and the file is as it was (or spooling is off): the caller stores d directly.
func (s *spool) append(d Delivery) error {
	if int64(len(d.Body)) >= s.limit {
		return errSpoolFull // never encode a body that cannot fit
	}
	bp := recordPool.Get().(*[]byte)
	rec := appendRecord((*bp)[:0], &d)
	defer func() {
		if cap(rec) <= 4<<20 { // keep ordinary buffers only
			*bp = rec
			recordPool.Put(bp)
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errSpoolClosed
	case s.broken != nil:
		return s.broken
	case s.pending+int64(len(rec)) > s.limit:
		return errSpoolFull
	}
	seg := s.cur
	if n, err := seg.f.Write(rec); err != nil {
		// A torn record would hide every later one from a replay: cut it off, or stop
		// spooling.
		if terr := seg.f.Truncate(seg.size); terr != nil {
			s.broken = fmt.Errorf("spool %s unusable: a write failed (%v) and could not be undone: %w", seg.path, err, terr)
			s.r.log.Error("webhook: spooling stopped; deliveries are stored directly", "endpoint", s.r.endpoint, "error", s.broken)
		}
		return fmt.Errorf("writing spool %s (%d of %d bytes): %w", seg.path, n, len(rec), err)
	}
	size := int64(len(rec))
	seg.size += size
	seg.left++
	s.pending += size
	s.appended++
	s.queue = append(s.queue, spooled{d: d, seg: seg, size: size})
	if seg.size >= s.rotate && seg.size >= s.retryRotate {
		if next, err := s.newSegment(); err != nil {
			// Tried again once the file has grown by another rotation size, not on every
			// append.
			s.retryRotate = seg.size + s.rotate
			s.r.log.Warn("webhook: cannot start a new spool file; the current one grows", "endpoint", s.r.endpoint, "error", err)
		} else {
			s.old = append(s.old, seg)
			s.cur = next
		}
	}
	if !s.flushing {
		s.flushing = true
		go s.flush()
	} else if len(s.queue) == spoolBatch {
		s.wake()
	}
	return nil
}

// flush is the flusher: it hands the queue on in batches until it is empty, and ends;
// append starts it again.
func (s *spool) flush() {
	lingered := false
	linger := time.NewTimer(spoolLinger)
	defer linger.Stop()
	for {
		s.mu.Lock()
		if len(s.queue) == 0 || s.ctx.Err() != nil {
			s.flushing = false
			s.signal()
			s.mu.Unlock()
			return
		}
		if len(s.queue) < spoolBatch && !lingered && s.waiters == 0 {
			// A small batch costs a commit like a full one: let more arrive first, until
			// the batch is full or somebody waits in Flush.
			lingered = true
			s.mu.Unlock()
			linger.Reset(spoolLinger)
			select {
			case <-linger.C:
			case <-s.kick:
			}
			continue
		}
		lingered = false
		n := min(len(s.queue), spoolBatch)
		batch := slices.Clone(s.queue[:n])
		clear(s.queue[:n])
		s.queue = s.queue[n:]
		s.mu.Unlock()

		done := s.handOn(batch)
		s.mu.Lock()
		for _, it := range batch[:done] {
			s.pending -= it.size
			it.seg.left--
		}
		s.handed += int64(done)
		s.dropHandedLocked()
		if done < len(batch) { // Close gave up: what is left stays in the file
			s.queue = append(batch[done:], s.queue...)
		}
		s.signal()
		s.mu.Unlock()
	}
}

// dropHandedLocked removes the segments whose records are all handed on, and
// truncates the current one when all of its are: nothing in them is needed after a crash.
// s.mu is held.
func (s *spool) dropHandedLocked() {
	s.old = slices.DeleteFunc(s.old, func(seg *segment) bool {
		if seg.left > 0 {
			return false
		}
		// Removed before it is closed: closing unlocks it, and another process's Resume
		// would take it for a dead process's file.
		if err := errors.Join(os.Remove(seg.path), seg.f.Close()); err != nil {
			s.r.log.Warn("webhook: cannot remove a spent spool file; a replay after a crash stores its deliveries again", "path", seg.path, "error", err)
		}
		return true
	})
	if cur := s.cur; cur.left == 0 && cur.size > 0 && s.broken == nil {
		if err := cur.f.Truncate(0); err != nil {
			s.r.log.Warn("webhook: cannot truncate the spool; a replay after a crash stores its deliveries again", "path", cur.path, "error", err)
		} else {
			cur.size = 0
		}
	}
}

// handOn stores and notifies the batch, retrying what fails with backoff until all is
// done or Close gives up. It returns how many of the batch, from its start, are done; the
// rest are moved to its end.
func (s *spool) handOn(batch []spooled) int {
	wait := spoolRetryMin
	todo := batch
	for {
		ctx, cancel := context.WithTimeout(s.ctx, storeTimeout)
		err := errors.Join(s.storeAll(ctx, todo), s.notifyAll(ctx, todo))
		cancel()
		if err == nil {
			return len(batch)
		}
		// Done ones to the front of todo (so the batch's done ones stay a prefix); retry
		// the rest.
		slices.SortStableFunc(todo, func(a, b spooled) int {
			switch {
			case a.done == b.done:
				return 0
			case a.done:
				return -1
			}
			return 1
		})
		left := slices.IndexFunc(todo, func(it spooled) bool { return !it.done })
		if left < 0 {
			return len(batch)
		}
		todo = todo[left:]
		s.r.log.Warn("webhook: cannot move spooled deliveries to the store; retrying", "endpoint", s.r.endpoint,
			"failed", len(todo), "retry_in", wait, "error", err)
		select {
		case <-time.After(wait):
		case <-s.kick: // Flush is waiting: try again now
		case <-s.ctx.Done():
			return len(batch) - len(todo)
		}
		wait = min(2*wait, spoolRetryMax)
	}
}

// storeAll stores the deliveries of batch not stored yet: in one InsertBatch when the
// store has it, else (or when that batch holds a delivery the store refuses) with
// concurrent Inserts, which a grouping store commits together. A delivery the store
// refuses as invalid can never be stored: it is logged and dropped rather than retried
// forever.
func (s *spool) storeAll(ctx context.Context, batch []spooled) error {
	var todo []*spooled
	for i := range batch {
		if !batch[i].stored && !batch[i].done {
			todo = append(todo, &batch[i])
		}
	}
	if len(todo) == 0 {
		return nil
	}
	if bi, ok := s.r.store.(BatchInserter); ok {
		ds := make([]Delivery, len(todo))
		for i, it := range todo {
			ds[i] = it.d
		}
		inserted, err := bi.InsertBatch(ctx, ds)
		if err == nil {
			var errs []error
			for i, it := range todo {
				if inserted[i] {
					s.stored(it, it.d, true)
					continue
				}
				// A redelivery: whether it is handed on again depends on its status.
				d, err := s.r.store.Get(ctx, it.d.Endpoint, it.d.ID)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				s.stored(it, d, false)
			}
			return errors.Join(errs...)
		}
		if !errors.Is(err, ErrInvalid) {
			return err
		}
	}
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, it := range todo {
		wg.Go(func() {
			d, inserted, err := s.r.store.Insert(ctx, it.d)
			switch {
			case errors.Is(err, ErrInvalid):
				s.r.log.Error("webhook: spooled delivery refused by the store; dropped", "endpoint", s.r.endpoint, "id", it.d.ID, "error", err)
				it.done = true
			case err != nil:
				errs[i] = err
			default:
				s.stored(it, d, inserted)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stored records that it is in the store as d, and counts it.
func (s *spool) stored(it *spooled, d Delivery, inserted bool) {
	it.d, it.stored, it.inserted = d, true, inserted
	if inserted {
		s.r.stats.accepted.Add(1)
	} else {
		s.r.stats.duplicates.Add(1)
	}
}

// notifyAll hands on the stored deliveries of batch that are new or still pending, as
// ServeHTTP does for a delivery it stores itself, and marks them done.
func (s *spool) notifyAll(ctx context.Context, batch []spooled) error {
	var errs []error
	for i := range batch {
		it := &batch[i]
		if !it.stored || it.done {
			continue
		}
		if (it.inserted || it.d.Status == StatusPending) && s.r.notify != nil {
			if err := s.r.notify(ctx, it.d); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		it.done = true
	}
	return errors.Join(errs...)
}

// flushed waits until the deliveries appended before the call are handed on.
func (s *spool) flushed(ctx context.Context) error {
	s.mu.Lock()
	target := s.appended
	s.waiters++
	s.wake()
	defer func() { s.mu.Lock(); s.waiters--; s.mu.Unlock() }()
	for s.handed < target {
		if !s.flushing && s.ctx.Err() != nil {
			s.mu.Unlock()
			return fmt.Errorf("webhook: flush spool of %q: %w", s.r.endpoint, errSpoolClosed)
		}
		progress := s.progress
		s.mu.Unlock()
		select {
		case <-progress:
		case <-ctx.Done():
			return fmt.Errorf("webhook: flush spool of %q: %d deliveries not yet in the store: %w", s.r.endpoint, target-s.handedNow(), ctx.Err())
		}
		s.mu.Lock()
	}
	s.mu.Unlock()
	return nil
}

func (s *spool) handedNow() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handed
}

// close stops spooling (later deliveries are stored directly), waits for the backlog to
// be handed on until ctx is done, and closes the file: removed when it holds nothing
// left, else kept, unlocked, for the next Resume.
func (s *spool) close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		done := s.closeDone
		s.mu.Unlock()
		select { // a second Close reports what the first came to
		case <-done:
			return s.closeErr
		case <-ctx.Done():
			return fmt.Errorf("webhook: close spool of %q: waiting for another Close: %w", s.r.endpoint, ctx.Err())
		}
	}
	s.closed = true
	s.closeDone = make(chan struct{})
	s.mu.Unlock()
	s.closeErr = s.closeOnce(ctx)
	close(s.closeDone)
	return s.closeErr
}

// closeOnce is the work of the first close.
func (s *spool) closeOnce(ctx context.Context) error {
	err := s.flushed(ctx)
	s.cancel() // ends the flusher's retries, if any
	s.mu.Lock()
	for s.flushing {
		progress := s.progress
		s.mu.Unlock()
		<-progress // its store calls end with s.ctx
		s.mu.Lock()
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	left := 0
	for _, seg := range append(s.old, s.cur) {
		if seg.left == 0 {
			if err := os.Remove(seg.path); err != nil {
				errs = append(errs, err)
			}
		}
		left += seg.left
		if err := seg.f.Close(); err != nil { // unlocks it for the next Resume
			errs = append(errs, err)
		}
	}
	s.old = nil
	s.mu.Unlock()
	if left > 0 {
		s.r.log.Warn("webhook: spool closed with deliveries not yet stored; the next Resume stores them", "endpoint", s.r.endpoint, "dir", s.dir, "left", left)
	}
	return errors.Join(errs...)
}

// replay stores the deliveries of the spool files other processes of this endpoint left
// in dir (those whose lock can be taken: their process is gone), and removes the files.
// It returns how many deliveries it read. A file that does not end cleanly (a corrupt
// record, or one cut short by a machine crash) is replayed up to the bad record and
// renamed with ".corrupt" appended, for a person to look at.
func (s *spool) replay(ctx context.Context) (int, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, err
	}
	prefix, total := spoolPrefix(s.r.endpoint), 0
	for _, e := range entries {
		if name := e.Name(); e.Type().IsRegular() && strings.HasPrefix(name, prefix) && strings.HasSuffix(name, spoolExt) {
			n, err := s.replayFile(ctx, filepath.Join(s.dir, name)) // skips this process's own: they are locked
			total += n
			if err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

func (s *spool) replayFile(ctx context.Context, path string) (int, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil // replayed by another process meanwhile
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if lockFile(f) != nil {
		return 0, nil // its process is alive
	}
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if now, err := os.Stat(path); err != nil || !os.SameFile(info, now) {
		return 0, nil // replayed and removed by another process between the open and the lock
	}
	rd := &recordReader{r: bufio.NewReaderSize(f, 64<<10), left: info.Size()}
	n, foreign := 0, 0
	var batch []Delivery
	store := func() error {
		if err := s.insertAll(ctx, batch); err != nil {
			return fmt.Errorf("replaying spool %s: %w", path, err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for {
		d, err := rd.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if err := store(); err != nil {
				return n, err
			}
			s.r.log.Error("webhook: spool file does not end cleanly; replayed up to the bad record and kept for inspection",
				"endpoint", s.r.endpoint, "path", path+".corrupt", "offset", rd.off, "bytes_left", rd.left, "replayed", n, "error", err)
			return n, ignoreNotExist(os.Rename(path, path+".corrupt"))
		}
		if d.Endpoint != s.r.endpoint {
			foreign++ // another endpoint with the same name hash: its own Resume stores it
			continue
		}
		if batch = append(batch, d); len(batch) == spoolBatch {
			if err := store(); err != nil {
				return n, err
			}
		}
	}
	if err := store(); err != nil {
		return n, err
	}
	if foreign > 0 {
		s.r.log.Warn("webhook: spool file holds deliveries of another endpoint; kept for its Resume", "endpoint", s.r.endpoint, "path", path, "foreign", foreign)
		return n, nil
	}
	return n, ignoreNotExist(os.Remove(path))
}

// ignoreNotExist drops an error saying the file is gone: another process replayed it too.
func ignoreNotExist(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// insertAll inserts ds, in one InsertBatch when the store has it (else, or when the
// batch holds a delivery the store refuses, concurrently); a delivery already stored is
// left as it is. Resume hands pending ones on afterwards.
func (s *spool) insertAll(ctx context.Context, ds []Delivery) error {
	if bi, ok := s.r.store.(BatchInserter); ok && len(ds) > 0 {
		_, err := bi.InsertBatch(ctx, ds)
		if !errors.Is(err, ErrInvalid) {
			return err
		}
	}
	errs := make([]error, len(ds))
	var wg sync.WaitGroup
	for i := range ds {
		wg.Go(func() {
			_, _, errs[i] = s.r.store.Insert(ctx, ds[i])
			if errors.Is(errs[i], ErrInvalid) {
				s.r.log.Error("webhook: spooled delivery refused by the store; dropped", "endpoint", s.r.endpoint, "id", ds[i].ID, "error", errs[i])
				errs[i] = nil
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// appendRecord appends d's record (length, CRC-32C, payload) to buf.
func appendRecord(buf []byte, d *Delivery) []byte {
	buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0) // length and checksum, set below
	start := len(buf)
	buf = append(buf, spoolVersion)
	buf = appendString(buf, d.Endpoint)
	buf = appendString(buf, d.ID)
	buf = appendString(buf, d.Event)
	buf = binary.AppendUvarint(buf, uint64(len(d.Header)))
	for k, vs := range d.Header {
		buf = appendString(buf, k)
		buf = binary.AppendUvarint(buf, uint64(len(vs)))
		for _, v := range vs {
			buf = appendString(buf, v)
		}
	}
	buf = binary.AppendUvarint(buf, uint64(len(d.Body)))
	buf = append(buf, d.Body...)
	nanos := int64(zeroTime)
	if !d.ReceivedAt.IsZero() {
		nanos = d.ReceivedAt.UnixNano()
	}
	buf = binary.AppendVarint(buf, nanos)
	payload := buf[start:]
	binary.LittleEndian.PutUint32(buf[start-8:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[start-4:], crc32.Checksum(payload, castagnoli))
	return buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// recordReader reads the records of a spool file.
type recordReader struct {
	r    *bufio.Reader
	left int64 // bytes not yet read
	off  int64 // offset of the next record
}

// next returns the next record's delivery; io.EOF at the end of the file, errSpoolCorrupt
// (wrapped) for a record that is wrong or cut short (by a machine crash during its write,
// or a corrupt length).
func (rr *recordReader) next() (Delivery, error) {
	if rr.left == 0 {
		return Delivery{}, io.EOF
	}
	if rr.left < 8 {
		return Delivery{}, fmt.Errorf("%w: %d bytes at offset %d, too few for a record", errSpoolCorrupt, rr.left, rr.off)
	}
	var head [8]byte
	if _, err := io.ReadFull(rr.r, head[:]); err != nil {
		return Delivery{}, err
	}
	n := int64(binary.LittleEndian.Uint32(head[:4]))
	if n > rr.left-8 {
		return Delivery{}, fmt.Errorf("%w: a record of %d bytes at offset %d runs past the end of the file", errSpoolCorrupt, n, rr.off)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(rr.r, payload); err != nil {
		return Delivery{}, err
	}
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(head[4:]) {
		return Delivery{}, fmt.Errorf("%w: checksum mismatch at offset %d", errSpoolCorrupt, rr.off)
	}
	d, err := decodeRecord(payload)
	if err != nil {
		return Delivery{}, fmt.Errorf("%w at offset %d: %v", errSpoolCorrupt, rr.off, err)
	}
	rr.left -= 8 + n
	rr.off += 8 + n
	return d, nil
}

// decodeRecord reads a record's payload. Strings and the body are copies, not views of p.
func decodeRecord(p []byte) (Delivery, error) {
	dec := decoder{p: p}
	if v := dec.byte(); v != spoolVersion {
		return Delivery{}, fmt.Errorf("unknown record version %d", v)
	}
	d := Delivery{Endpoint: dec.string(), ID: dec.string(), Event: dec.string(), Status: StatusPending}
	if keys := dec.count(); keys > 0 {
		d.Header = make(http.Header, min(keys, 64)) // a count is not trusted to size memory
		for range keys {
			k := dec.string()
			vs := make([]string, dec.count())
			for i := range vs {
				vs[i] = dec.string()
			}
			if dec.err == nil {
				d.Header[k] = vs
			}
		}
	}
	d.Body = []byte(dec.string())
	nanos, n := binary.Varint(dec.p)
	if n <= 0 {
		dec.fail("bad receive time")
	} else {
		dec.p = dec.p[n:]
	}
	if dec.err == nil && len(dec.p) != 0 {
		dec.fail("trailing bytes")
	}
	if dec.err != nil {
		return Delivery{}, dec.err
	}
	if nanos != zeroTime {
		d.ReceivedAt = time.Unix(0, nanos)
	}
	return d, nil
}

// decoder reads a record's fields; the first problem sticks in err and later reads return
// zero values.
type decoder struct {
	p   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = errors.New(what)
	}
	d.p = nil
}

func (d *decoder) byte() byte {
	if len(d.p) == 0 {
		d.fail("record too short")
		return 0
	}
	b := d.p[0]
	d.p = d.p[1:]
	return b
}

// count reads a uvarint count; one that exceeds the bytes left (each counted item takes
// at least one) is an error, so a corrupt count never allocates much.
func (d *decoder) count() int {
	v, n := binary.Uvarint(d.p)
	if n <= 0 || v > uint64(len(d.p)-n) {
		d.fail("bad count")
		return 0
	}
	d.p = d.p[n:]
	return int(v)
}

func (d *decoder) string() string {
	v, n := binary.Uvarint(d.p)
	if n <= 0 || v > uint64(len(d.p)-n) {
		d.fail("bad length")
		return ""
	}
	s := string(d.p[n : n+int(v)])
	d.p = d.p[n+int(v):]
	return s
}
