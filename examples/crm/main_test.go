package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/connkittest/fakecrm"
	"github.com/connkit/connkit/sqlstore"
)

type result struct {
	stdout, stderr string
	sum            summary
	err            error
}

// runCRM runs the program in-process with -json and decodes the summary from the last
// line of stdout.
func runCRM(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, append([]string{"-json"}, args...), &stdout, &stderr)
	r := result{stdout: stdout.String(), stderr: stderr.String(), err: err}
	if err == nil {
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &r.sum), "last line of stdout: %q", r.stdout)
	}
	return r
}

func (r result) imported(model string) counts { return r.sum.model(model).Import }
func (r result) exported(model string) counts { return r.sum.model(model).Export }

func dbPath(t *testing.T) string { return filepath.Join(t.TempDir(), "crm.db") }

// openApp opens the connector on a database a run used, as the app would between runs.
func openApp(t *testing.T, path, baseURL, token string) *app {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	cfg, err := backend.ParseConfig(crmYAML, func(name string) (string, bool) {
		return map[string]string{"CRM_BASE_URL": baseURL, "CRM_TOKEN": token}[name], true
	})
	require.NoError(t, err)
	a, err := newApp(ctx, cfg, db)
	require.NoError(t, err)
	return a
}

// The whole two-way flow against one CRM that keeps its state across runs: import, local
// edits exported (PATCH and POST), their echo not imported back, a second run that creates
// nothing, and a change made in the CRM that does come in.
func TestTwoWaySync(t *testing.T) {
	crm := fakecrm.New(fakecrm.WithSeedData(230, 5, 7)) // 3 pages of contacts
	defer crm.Close()
	path := dbPath(t)
	args := []string{"-base-url", crm.URL, "-token", crm.Token(), "-db", path, "-demo-edits"}

	first := runCRM(t, args...)
	require.NoError(t, first.err, first.stderr)
	assert.Equal(t, counts{Created: 5}, first.imported("company"))
	assert.Equal(t, counts{Created: 230}, first.imported("contact"))
	assert.Equal(t, counts{Created: 1, Updated: 1}, first.exported("contact"), "one PATCH, one POST")
	assert.Equal(t, counts{}, first.exported("company"))
	assert.Zero(t, first.sum.ExportsWaiting)
	st := crm.Stats()
	assert.Equal(t, 1, st.Creates)
	assert.Equal(t, 1, st.Updates)
	assert.Equal(t, path, first.sum.DB)
	assert.EqualValues(t, st.Requests, first.sum.Requests, "every request is counted")

	// What the CRM now holds: the edited first contact and the new one, associated with
	// the first contact's company.
	contacts := crm.List(fakecrm.Contacts)
	require.Len(t, contacts, 231)
	edited, added := crmContact(t, crm, path, "1"), contacts[230]
	assert.Equal(t, demoPhone, edited.Properties["phone"])
	assert.Equal(t, demoStage, edited.Properties["lifecyclestage"])
	assert.Equal(t, demoNewEmail, added.Properties["email"])
	assert.Empty(t, added.Associated, "not sent (see contactModel)")

	// Second run, nothing changed anywhere: the CRM's copies of the two writes are the
	// connector's own echo and are skipped, nothing is written on either side.
	a := openApp(t, path, crm.URL, crm.Token())
	localBefore := snapshot(t, a)
	require.NoError(t, a.db.Close())
	second := runCRM(t, args...)
	require.NoError(t, second.err, second.stderr)
	assert.Equal(t, counts{Skipped: 5}, second.imported("company"))
	assert.Equal(t, counts{Skipped: 231}, second.imported("contact"), "the echo of the PATCH and the POST is a skip")
	assert.Equal(t, counts{}, second.exported("contact"))
	after := crm.Stats()
	assert.Equal(t, st.Creates, after.Creates, "the second run creates nothing")
	assert.Equal(t, st.Updates, after.Updates, "the second run writes nothing to the CRM")
	assert.Equal(t, st.Lists+4, after.Lists, "one listing of each, no per-record fetches")
	a = openApp(t, path, crm.URL, crm.Token())
	assert.Equal(t, localBefore, snapshot(t, a), "the second run writes nothing locally")
	require.NoError(t, a.db.Close())

	// A change made in the CRM is imported.
	other := contacts[7]
	require.True(t, crm.Update(fakecrm.Contacts, other.ID, map[string]string{"phone": "+44 20 7946 0000"}))
	third := runCRM(t, args...)
	require.NoError(t, third.err, third.stderr)
	assert.Equal(t, counts{Updated: 1, Skipped: 230}, third.imported("contact"))
	assert.Equal(t, counts{}, third.exported("contact"), "importing a change does not send it back")
	a = openApp(t, path, crm.URL, crm.Token())
	b, err := a.crm.Bindings().GetByExternal(context.Background(), "crm", "contact", other.ID)
	require.NoError(t, err)
	c, err := a.contacts.Get(context.Background(), b.LocalID)
	require.NoError(t, err)
	assert.Equal(t, "+44 20 7946 0000", c.Phone)
	assert.Equal(t, other.Properties["email"], c.Email)
}

// crmContact is the CRM's copy of local contact localID.
func crmContact(t *testing.T, crm *fakecrm.Server, path, localID string) fakecrm.Object {
	t.Helper()
	a := openApp(t, path, crm.URL, crm.Token())
	defer a.db.Close()
	b, err := a.crm.Bindings().GetByLocal(context.Background(), "crm", "contact", localID)
	require.NoError(t, err)
	o, ok := crm.Get(fakecrm.Contacts, b.ExternalID)
	require.True(t, ok)
	return o
}

// snapshot is every local record, to compare runs.
func snapshot(t *testing.T, a *app) map[string]any {
	t.Helper()
	out := map[string]any{}
	for e, err := range a.companies.All(context.Background()) {
		require.NoError(t, err)
		out["company/"+e.ID] = e
	}
	for e, err := range a.contacts.All(context.Background()) {
		require.NoError(t, err)
		out["contact/"+e.ID] = e
	}
	return out
}

// With no flags but -db, the program runs against its embedded CRM and makes its demo
// edits; a second run (a fresh embedded CRM, the same database) creates nothing.
func TestEmbeddedDefault(t *testing.T) {
	path := dbPath(t)
	first := runCRM(t, "-db", path)
	require.NoError(t, first.err, first.stderr)
	assert.Equal(t, counts{Created: fakeCompanies}, first.imported("company"))
	assert.Equal(t, counts{Created: fakeContacts}, first.imported("contact"))
	assert.Equal(t, counts{Created: 1, Updated: 1}, first.exported("contact"))
	assert.Contains(t, first.stderr, "embedded fake CRM")
	assert.Contains(t, first.stderr, "database: "+path)
	assert.Contains(t, first.stderr, "import contact")

	second := runCRM(t, "-db", path)
	require.NoError(t, second.err, second.stderr)
	assert.Equal(t, counts{Skipped: fakeCompanies}, second.imported("company"))
	// The fresh CRM shows the edited contact as it was before the edit, with an older
	// updatedAt than the edit's: a stale copy, skipped.
	assert.Equal(t, counts{Skipped: fakeContacts}, second.imported("contact"))
	assert.Equal(t, counts{}, second.exported("contact"))

	// Without -json the summary is for people.
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-db", path}, &stdout, &stderr))
	assert.Contains(t, stdout.String(), "contact  import: 0 created, 0 updated, 120 skipped")
	assert.NotContains(t, stdout.String(), "{")
}

// The -json summary is one object on the last line, with every count always present.
func TestJSONShape(t *testing.T) {
	r := runCRM(t, "-db", dbPath(t), "-demo-edits=false")
	require.NoError(t, r.err, r.stderr)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &raw))
	assert.ElementsMatch(t, []string{"db", "companies", "contacts", "partners", "exports_waiting", "requests", "retries",
		"429s", "seconds"}, keys(raw))
	fields := []string{"created", "updated", "skipped", "duplicates", "failed"}
	for _, model := range []string{"companies", "contacts", "partners"} {
		m := raw[model].(map[string]any)
		assert.ElementsMatch(t, append([]string{"import", "export"}, fields...), keys(m), model)
		for _, dir := range []string{"import", "export"} {
			assert.ElementsMatch(t, fields, keys(m[dir].(map[string]any)), model+" "+dir)
		}
	}
	assert.Equal(t, float64(fakeContacts), raw["contacts"].(map[string]any)["created"], "every direction together")
	assert.Equal(t, counts{}, r.exported("contact"), "-demo-edits=false makes no edits")
	assert.Equal(t, float64(3), raw["requests"], "one page of companies, two of contacts")
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// A CRM failing a quarter of the requests: the run's counts still add up to the records
// listed, retries absorb the faults, and a run after the CRM recovered leaves both sides
// complete, with nothing duplicated.
func TestFaults(t *testing.T) {
	crm := fakecrm.New(fakecrm.WithSeedData(230, 5, 7), fakecrm.WithFaults(0.25, 3))
	defer crm.Close()
	path := dbPath(t)
	args := []string{"-base-url", crm.URL, "-token", crm.Token(), "-db", path, "-demo-edits"}

	first := runCRM(t, args...)
	require.NoError(t, first.err, first.stderr)
	assert.Positive(t, crm.Stats().Faults)
	assert.Positive(t, first.sum.Retries)
	total := func(c counts) int { return c.Created + c.Updated + c.Skipped + c.Duplicates + c.Failed }
	assert.Equal(t, 5, total(first.imported("company")))
	assert.Equal(t, 230, total(first.imported("contact")))

	crm.SetFaultRate(0)
	second := runCRM(t, args...)
	require.NoError(t, second.err, second.stderr)
	assert.Zero(t, second.imported("contact").Failed)
	assert.Zero(t, second.sum.ExportsWaiting)
	assert.Equal(t, 1, crm.Stats().Creates, "the new contact was created once, retries included")
	assert.Len(t, crm.List(fakecrm.Contacts), 231)

	a := openApp(t, path, crm.URL, crm.Token())
	ctx := context.Background()
	for _, model := range []string{"company", "contact"} {
		n, err := a.crm.Bindings().Counts(ctx, "crm", model)
		require.NoError(t, err)
		assert.Equal(t, map[binding.Status]int{binding.StatusSuccess: map[string]int{"company": 5, "contact": 231}[model]}, n, model)
	}
	assert.Equal(t, demoPhone, crmContact(t, crm, path, "1").Properties["phone"], "the PATCH got through in the end")
}

// A contact the app adds with an email the CRM already has is refused with 409; the
// export fails visibly, naming the CRM's existing record, and nothing is created.
func TestExportConflict(t *testing.T) {
	crm := fakecrm.New(fakecrm.WithSeedData(3, 1, 7))
	defer crm.Close()
	path := dbPath(t)
	args := []string{"-base-url", crm.URL, "-token", crm.Token(), "-db", path}
	require.NoError(t, runCRM(t, args...).err)

	existing := crm.List(fakecrm.Contacts)[1]
	a := openApp(t, path, crm.URL, crm.Token())
	_, created, err := a.addContact(context.Background(), "app:dup", Contact{Email: existing.Properties["email"], FirstName: "Dup"})
	require.NoError(t, err)
	require.True(t, created)
	require.NoError(t, a.db.Close())

	r := runCRM(t, args...)
	require.NoError(t, r.err, r.stderr)
	assert.Positive(t, r.exported("contact").Failed, "failed (once per attempt: the job is retried)")
	assert.Zero(t, r.exported("contact").Created)
	assert.Contains(t, r.stderr, "Existing ID: "+existing.ID)
	assert.Zero(t, crm.Stats().Creates)
	assert.Positive(t, crm.Stats().Conflicts)
}

// A wrong token stops the run after one request, says what to check, and the token
// appears nowhere.
func TestWrongToken(t *testing.T) {
	crm := fakecrm.New(fakecrm.WithSeedData(3, 1, 7))
	defer crm.Close()
	const secret = "pat-na1-wrong-secret-token-4242"
	r := runCRM(t, "-base-url", crm.URL, "-token", secret, "-db", dbPath(t))
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "-token")
	assert.Contains(t, r.err.Error(), "CRM_TOKEN")
	assert.Equal(t, 1, crm.Stats().Requests, "one request, no retries, no other model tried")
	for name, out := range map[string]string{"stdout": r.stdout, "stderr": r.stderr, "error": r.err.Error()} {
		assert.NotContains(t, out, secret, name)
		assert.NotContains(t, out, "wrong-secret", name)
	}
}

func TestBadFlags(t *testing.T) {
	t.Setenv("CRM_TOKEN", "")
	for _, args := range [][]string{
		{"-faults", "1.5"},
		{"-faults", "-0.1"},
		{"-faults", "0.1", "-base-url", "http://127.0.0.1:1"},
		{"extra"},
		{"-nope"},
		{"-base-url", "ftp://example.com", "-token", "x"},
	} {
		r := runCRM(t, append(args, "-db", dbPath(t))...)
		assert.Error(t, r.err, "%q", args)
	}
	r := runCRM(t, "-base-url", "http://127.0.0.1:1", "-db", dbPath(t))
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "pass -token or set CRM_TOKEN")
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in two goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func postPartner(t *testing.T, endpoint, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(data)
}

// The apisync part: with -serve, the partner endpoint takes partner records (with the
// right key only), their on_create trigger pushes each to the CRM as a company, and the
// next run imports that company like any other, pushing nothing twice.
func TestPartners(t *testing.T) {
	crm := fakecrm.New(fakecrm.WithSeedData(10, 2, 7))
	defer crm.Close()
	const key = "partner-key-for-the-test"
	args := []string{"-base-url", crm.URL, "-token", crm.Token(), "-db", dbPath(t), "-partner-key", key}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, append(args, "-json", "-serve", "127.0.0.1:0"), &stdout, &stderr) }()
	endpoint := regexp.MustCompile(`partner endpoint: (http://\S+)`)
	var url string
	require.Eventually(t, func() bool {
		if m := endpoint.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
		}
		return url != ""
	}, time.Minute, 20*time.Millisecond, "the endpoint is announced on stderr")
	assert.Contains(t, stdout.String(), `"contacts"`, "the sync's summary comes before serving")

	status, _ := postPartner(t, url, "wrong-key", `{"name":"Nope","domain":"nope.example"}`)
	assert.Equal(t, http.StatusUnauthorized, status)
	status, body := postPartner(t, url, key, `{"name":"Nope"}`)
	assert.Equal(t, http.StatusBadRequest, status, "the domain line is required: %s", body)
	status, body = postPartner(t, url, key, `{"name":"Partner One","domain":"partner-one.example","phone":"+1 555 0199"}`)
	require.Equal(t, http.StatusCreated, status, body)

	require.Eventually(t, func() bool { return len(crm.List(fakecrm.Companies)) == 3 }, time.Minute, 50*time.Millisecond,
		"the on_create trigger pushes the partner")
	pushed := crm.List(fakecrm.Companies)[2]
	assert.Equal(t, "Partner One", pushed.Properties["name"])
	assert.Equal(t, "partner-one.example", pushed.Properties["domain"])
	assert.Equal(t, "+1 555 0199", pushed.Properties["phone"])
	cancel()
	require.NoError(t, <-done)
	assert.NotContains(t, stdout.String()+stderr.String(), key, "the endpoint's key is never printed")

	second := runCRM(t, args...)
	require.NoError(t, second.err, second.stderr)
	assert.Equal(t, counts{Created: 1, Skipped: 2}, second.imported("company"), "the partner's company comes back as a company")
	assert.Equal(t, counts{Skipped: 1}, second.exported("partner"), "pushed once")
	third := runCRM(t, args...)
	require.NoError(t, third.err, third.stderr)
	assert.Equal(t, counts{Skipped: 3}, third.imported("company"))
	assert.Equal(t, 1, crm.Stats().Creates, "one company created in the CRM, by the trigger")
}

// The program itself (main) exits 1 on a refused token, with the reason on stderr and
// the token nowhere: the test binary re-runs itself as the program.
func TestMainExitCode(t *testing.T) {
	if os.Getenv("CRM_EXAMPLE_MAIN") == "1" {
		os.Args = append([]string{"crm"}, strings.Fields(os.Getenv("CRM_EXAMPLE_ARGS"))...)
		main()
		os.Exit(0)
	}
	crm := fakecrm.New(fakecrm.WithSeedData(3, 1, 7))
	defer crm.Close()
	const secret = "pat-na1-not-the-right-one-777"
	cmd := exec.Command(os.Args[0], "-test.run", "^TestMainExitCode$")
	cmd.Env = append(os.Environ(), "CRM_EXAMPLE_MAIN=1",
		"CRM_EXAMPLE_ARGS=-base-url "+crm.URL+" -token "+secret+" -db "+dbPath(t))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", out)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Contains(t, string(out), "crm: the CRM refused the access token: check -token")
	assert.NotContains(t, string(out), secret)
	assert.Equal(t, 1, crm.Stats().Requests)
}

// New contacts, with or without a company, are created (without the association: see
// contactModel); the binding of each create keeps the CRM's updatedAt, which is what makes
// the next import a skip.
func TestNewContacts(t *testing.T) {
	crm := fakecrm.New(fakecrm.WithSeedData(3, 1, 7))
	defer crm.Close()
	path := dbPath(t)
	args := []string{"-base-url", crm.URL, "-token", crm.Token(), "-db", path}
	require.NoError(t, runCRM(t, args...).err)

	ctx := context.Background()
	a := openApp(t, path, crm.URL, crm.Token())
	_, created, err := a.addContact(ctx, "app:alone", Contact{Email: "alone@example.com", FirstName: "Al"})
	require.NoError(t, err)
	require.True(t, created)
	_, _, err = a.addContact(ctx, "app:with-company", Contact{Email: "with@example.com", CompanyID: "1"})
	require.NoError(t, err)
	require.NoError(t, a.db.Close())

	r := runCRM(t, args...)
	require.NoError(t, r.err, r.stderr)
	assert.Equal(t, counts{Created: 2}, r.exported("contact"), r.stderr)
	var with fakecrm.Object
	for _, o := range crm.List(fakecrm.Contacts) {
		if o.Properties["email"] == "with@example.com" {
			with = o
		}
	}
	require.NotEmpty(t, with.ID)

	a = openApp(t, path, crm.URL, crm.Token())
	b, err := a.crm.Bindings().GetByExternal(ctx, "crm", "contact", with.ID)
	require.NoError(t, err)
	assert.True(t, b.ExternalUpdatedAt.Equal(with.UpdatedAt), "binding %v, CRM %v", b.ExternalUpdatedAt, with.UpdatedAt)
	require.NoError(t, a.db.Close())

	again := runCRM(t, args...)
	require.NoError(t, again.err, again.stderr)
	assert.Equal(t, counts{Skipped: 5}, again.imported("contact"), "the creates' echo")
	a = openApp(t, path, crm.URL, crm.Token())
	c, err := a.contacts.Get(ctx, b.LocalID)
	require.NoError(t, err)
	assert.Equal(t, "1", c.CompanyID, "the echo did not clear the local company")
}

// A CRM enforcing its request quota (HubSpot's rolling window) sends
// X-HubSpot-RateLimit-* headers, which the connector reads (rate_limit.headers: hubspot):
// it slows down before the window is used up, so the run completes without a 429.
func TestRateLimited(t *testing.T) {
	crm := fakecrm.New(fakecrm.WithSeedData(230, 5, 7), fakecrm.WithRateLimit(2, time.Second))
	defer crm.Close()
	r := runCRM(t, "-base-url", crm.URL, "-token", crm.Token(), "-db", dbPath(t))
	require.NoError(t, r.err, r.stderr)
	assert.Equal(t, counts{Created: 230}, r.imported("contact"))
	assert.Zero(t, r.sum.Limited, "the client paced itself by the window's headers")
	assert.EqualValues(t, crm.Stats().RateLimited, r.sum.Limited)
}

// -faults makes the embedded CRM fail a share of the requests: the run absorbs them with
// retries and its counts still add up to the records listed.
func TestEmbeddedFaults(t *testing.T) {
	r := runCRM(t, "-db", dbPath(t), "-faults", "0.5")
	require.NoError(t, r.err, r.stderr)
	assert.Positive(t, r.sum.Retries)
	total := func(c counts) int { return c.Created + c.Updated + c.Skipped + c.Duplicates + c.Failed }
	assert.Equal(t, fakeCompanies, total(r.imported("company")))
	assert.Equal(t, fakeContacts, total(r.imported("contact")))
}
