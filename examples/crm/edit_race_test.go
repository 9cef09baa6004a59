package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/connkittest/fakecrm"
)

// An edit committed while the export of the previous edit of the same contact is in
// flight still reaches the CRM.
func TestEditDuringExport(t *testing.T) {
	crm := fakecrm.New(fakecrm.WithSeedData(3, 1, 7))
	defer crm.Close()
	path := dbPath(t)
	require.NoError(t, runCRM(t, "-base-url", crm.URL, "-token", crm.Token(), "-db", path).err)

	ctx := context.Background()
	a := openApp(t, path, crm.URL, crm.Token())
	require.NoError(t, a.crm.Start(ctx))
	defer a.crm.Stop(ctx)
	crm.SetLatency(500 * time.Millisecond)
	before := crm.Stats().Requests
	_, err := a.editContact(ctx, "1", func(c *Contact) { c.Phone = "+1 555 0001" })
	require.NoError(t, err)
	require.Eventually(t, func() bool { return crm.Stats().Requests > before }, 10*time.Second, 5*time.Millisecond,
		"the first export is in flight")
	_, err = a.editContact(ctx, "1", func(c *Contact) { c.Phone = "+1 555 0002" })
	require.NoError(t, err)
	crm.SetLatency(0)
	_, err = drain(ctx, a.crm, &syncBuffer{})
	require.NoError(t, err)
	assert.Equal(t, "+1 555 0002", crmContact(t, crm, path, "1").Properties["phone"], "the second edit was exported")
}
