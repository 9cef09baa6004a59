package main

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/connkit/connkit/backend"
)

// The app's side of the two-way sync. The app changes its records in its own
// transactions and, in the same transaction, asks the connector to export them
// (Later().ExportTx): both commit or neither does, so a crash can neither lose an export
// nor send one for a change that was rolled back. The connector's workers send them
// (Backend.Start); a CRM that is down only delays them.

// exportLater queues exports of the app's edits.
func (a *app) exportLater() *backend.Later { return a.crm.Later() }

// editContact applies change to local contact id and queues its export, unless change
// left it as it was. It reports whether the contact changed.
func (a *app) editContact(ctx context.Context, id string, change func(*Contact)) (bool, error) {
	changed := false
	err := a.db.InTx(ctx, func(tx *sql.Tx) error {
		contacts := a.contacts.WithTx(tx)
		c, err := contacts.Get(ctx, id)
		if err != nil {
			return err
		}
		before := c
		change(&c)
		if c == before {
			return nil
		}
		if err := contacts.Update(ctx, id, c); err != nil {
			return err
		}
		if _, err := a.exportLater().ExportTx(ctx, tx, "contact", id); err != nil {
			return err
		}
		changed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("editing contact %s: %w", id, err)
	}
	return changed, nil
}

// addContact creates a local contact under key (the app's own identity for it, so adding
// it twice adds one) and queues its export. It returns the local ID and whether it was
// created now.
func (a *app) addContact(ctx context.Context, key string, c Contact) (id string, created bool, err error) {
	err = a.db.InTx(ctx, func(tx *sql.Tx) error {
		id, created, err = a.contacts.WithTx(tx).CreateKeyed(ctx, key, c)
		if err != nil || !created {
			return err
		}
		_, err = a.exportLater().ExportTx(ctx, tx, "contact", id)
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("adding contact %s: %w", c.Email, err)
	}
	return id, created, nil
}

// Demo edits, made when -demo-edits is on: what a user of the app would do after an
// import. Both are idempotent, so running them again changes nothing.
const (
	demoPhone    = "+1 555 0100"
	demoStage    = "customer"
	demoNewKey   = "app:demo-new-contact"
	demoNewEmail = "nova.contact@example.com"
)

// demoEdits changes the phone and stage of the app's first contact and adds a new
// contact at the first contact's company. It returns how many edits it queued.
func (a *app) demoEdits(ctx context.Context) (int, error) {
	var firstID string
	var first Contact
	for e, err := range a.contacts.All(ctx) {
		if err != nil {
			return 0, err
		}
		firstID, first = e.ID, e.Value
		break
	}
	if firstID == "" {
		return 0, nil // nothing imported yet
	}
	n := 0
	changed, err := a.editContact(ctx, firstID, func(c *Contact) { c.Phone, c.Stage = demoPhone, demoStage })
	if err != nil {
		return n, err
	}
	if changed {
		n++
	}
	_, created, err := a.addContact(ctx, demoNewKey, Contact{Email: demoNewEmail, FirstName: "Nova",
		LastName: "Contact", Stage: "lead", CompanyID: first.CompanyID})
	if created {
		n++
	}
	return n, err
}
