package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

// keyTests cover key rotation: AddSigningKey, and the paging and conditional replacement that
// master-key rotation re-seals every sealed column with.
var keyTests = []test{
	{"AddSigningKey stores the key and retires the keys not yet replaced", func(t *testing.T, f *fixture) {
		other := f.otherProject(t)
		theirs, err := f.store.SigningKeys(f.ctx, other.ID)
		must(t, err, "SigningKeys(other)")
		first, err := f.store.SigningKeys(f.ctx, f.project.ID)
		must(t, err, "SigningKeys")

		second := newSigningKey(f.project.ID, f.now)
		second.ActivatesAt = f.now.Add(2 * time.Minute)
		retireAt := f.now.Add(17 * time.Minute)
		must(t, f.store.AddSigningKey(f.ctx, second, retireAt), "AddSigningKey")
		got, err := f.store.SigningKeys(f.ctx, f.project.ID)
		must(t, err, "SigningKeys")
		replaced := first[0]
		replaced.RetiresAt = retireAt
		wantEqual(t, got, []auth.SigningKey{second, replaced}, "SigningKeys after AddSigningKey")

		// A key already retiring keeps its time; only the newest is replaced by a third key.
		third := newSigningKey(f.project.ID, f.now.Add(time.Minute))
		third.ActivatesAt = f.now.Add(3 * time.Minute)
		must(t, f.store.AddSigningKey(f.ctx, third, f.now.Add(20*time.Minute)), "AddSigningKey(third)")
		got, err = f.store.SigningKeys(f.ctx, f.project.ID)
		must(t, err, "SigningKeys")
		second.RetiresAt = f.now.Add(20 * time.Minute)
		wantEqual(t, got, []auth.SigningKey{third, second, replaced}, "SigningKeys after a second AddSigningKey")

		after, err := f.store.SigningKeys(f.ctx, other.ID)
		must(t, err, "SigningKeys(other)")
		wantEqual(t, after, theirs, "the other project's keys")
	}},
	{"AddSigningKey deletes the keys retired before the new key", func(t *testing.T, f *fixture) {
		first, err := f.store.SigningKeys(f.ctx, f.project.ID)
		must(t, err, "SigningKeys")
		second := newSigningKey(f.project.ID, f.now)
		must(t, f.store.AddSigningKey(f.ctx, second, f.now.Add(time.Hour)), "AddSigningKey")

		// The first key retired at now+1h; a key made exactly then keeps it, a later one not.
		third := newSigningKey(f.project.ID, f.now.Add(time.Hour))
		must(t, f.store.AddSigningKey(f.ctx, third, f.now.Add(2*time.Hour)), "AddSigningKey(third)")
		got, err := f.store.SigningKeys(f.ctx, f.project.ID)
		must(t, err, "SigningKeys")
		if len(got) != 3 || got[2].KID != first[0].KID {
			t.Fatalf("SigningKeys = %d keys, want 3 with the first key, retired at the third's creation, kept", len(got))
		}
		fourth := newSigningKey(f.project.ID, f.now.Add(90*time.Minute))
		must(t, f.store.AddSigningKey(f.ctx, fourth, f.now.Add(3*time.Hour)), "AddSigningKey(fourth)")
		got, err = f.store.SigningKeys(f.ctx, f.project.ID)
		must(t, err, "SigningKeys")
		second.RetiresAt, third.RetiresAt = f.now.Add(2*time.Hour), f.now.Add(3*time.Hour)
		wantEqual(t, got, []auth.SigningKey{fourth, third, second}, "SigningKeys after the first key retired")
	}},
	{"AddSigningKey of an unknown project is ErrProjectNotFound", func(t *testing.T, f *fixture) {
		before, err := f.store.SigningKeys(f.ctx, f.project.ID)
		must(t, err, "SigningKeys")
		for _, ref := range []string{newID("project"), "", "bad\x00id", "\xff"} {
			key := newSigningKey(ref, f.now)
			wantErr(t, f.store.AddSigningKey(f.ctx, key, f.now.Add(time.Hour)), auth.ErrProjectNotFound, "AddSigningKey("+strings.ToValidUTF8(ref, "?")+")")
		}
		after, err := f.store.SigningKeys(f.ctx, f.project.ID)
		must(t, err, "SigningKeys")
		wantEqual(t, after, before, "the project's keys")
	}},
	{"concurrent AddSigningKey calls each retire the key before them", func(t *testing.T, f *fixture) {
		const n = 8
		errs := race(n, func(i int) error {
			return f.store.AddSigningKey(f.ctx, newSigningKey(f.project.ID, f.now), f.now.Add(time.Hour))
		})
		for i, err := range errs {
			must(t, err, fmt.Sprintf("AddSigningKey %d", i))
		}
		keys, err := f.store.SigningKeys(f.ctx, f.project.ID)
		must(t, err, "SigningKeys")
		unreplaced := 0
		for _, k := range keys {
			if k.RetiresAt.IsZero() {
				unreplaced++
			}
		}
		if len(keys) != n+1 || unreplaced != 1 {
			t.Errorf("after %d concurrent AddSigningKey: %d keys, %d without RetiresAt; want %d keys, one not replaced", n, len(keys), unreplaced, n+1)
		}
	}},
	{"SealedValues pages every sealed column in row order", func(t *testing.T, f *fixture) {
		want := f.sealedFixture(t)
		for _, column := range auth.SealedColumns() {
			all, err := f.store.SealedValues(f.ctx, column, "", 1000)
			must(t, err, "SealedValues("+string(column)+")")
			if w, ok := want[column]; ok {
				wantEqual(t, all, w, "SealedValues("+string(column)+")")
			}
			if !slices.IsSortedFunc(all, func(a, b auth.SealedValue) int { return strings.Compare(a.Row, b.Row) }) {
				t.Errorf("SealedValues(%s) rows are not in byte order", column)
			}
			n, err := f.store.CountSealedValues(f.ctx, column)
			must(t, err, "CountSealedValues("+string(column)+")")
			if n != len(all) {
				t.Errorf("CountSealedValues(%s) = %d, want %d", column, n, len(all))
			}
			var paged []auth.SealedValue
			for after := ""; ; {
				page, err := f.store.SealedValues(f.ctx, column, after, 2)
				must(t, err, "SealedValues page")
				if len(page) > 2 {
					t.Fatalf("SealedValues(%s, limit 2) = %d values", column, len(page))
				}
				paged = append(paged, page...)
				if len(page) < 2 {
					break
				}
				after = page[len(page)-1].Row
			}
			wantEqual(t, paged, all, "SealedValues("+string(column)+") in pages of 2")
		}
	}},
	{"SealedValues of an unknown column is a fault", func(t *testing.T, f *fixture) {
		if _, err := f.store.SealedValues(f.ctx, "members.email", "", 10); err == nil {
			t.Error("SealedValues(members.email): no error")
		}
		if _, err := f.store.CountSealedValues(f.ctx, "projects; DROP TABLE projects"); err == nil {
			t.Error("CountSealedValues(bogus): no error")
		}
		if _, err := f.store.ReplaceSealedValues(f.ctx, "x.y", []auth.SealedReplacement{{Row: f.project.ID}}); err == nil {
			t.Error("ReplaceSealedValues(x.y): no error")
		}
	}},
	{"ReplaceSealedValues replaces only values still as they were read", func(t *testing.T, f *fixture) {
		want := f.sealedFixture(t)
		for _, column := range auth.SealedColumns() {
			read := want[column]
			if len(read) == 0 {
				continue
			}
			var rs []auth.SealedReplacement
			for _, v := range read {
				rs = append(rs, auth.SealedReplacement{Row: v.Row, Old: v.Sealed, New: resealed(v.Sealed)})
			}
			// A replacement whose Old is not what the row holds, and one for a row that does not
			// exist, change nothing.
			rs = append(rs,
				auth.SealedReplacement{Row: read[0].Row, Old: randomBytes(40), New: randomBytes(40)},
				auth.SealedReplacement{Row: newID("member"), Old: read[0].Sealed, New: randomBytes(40)})
			n, err := f.store.ReplaceSealedValues(f.ctx, column, rs)
			must(t, err, "ReplaceSealedValues("+string(column)+")")
			if n != len(read) {
				t.Errorf("ReplaceSealedValues(%s) changed %d rows, want %d", column, n, len(read))
			}
			got, err := f.store.SealedValues(f.ctx, column, "", 1000)
			must(t, err, "SealedValues")
			for i := range read {
				read[i].Sealed = resealed(read[i].Sealed)
			}
			wantEqual(t, got, read, "SealedValues("+string(column)+") after ReplaceSealedValues")
		}
		// What the rest of the store reads is the replaced value.
		p, err := f.store.Project(f.ctx, f.project.ID)
		must(t, err, "Project")
		wantEqual(t, p.SealedPepper, resealed(f.project.SealedPepper), "the pepper Project returns")
	}},
	{"ReplaceSealedValues never overwrites a write made after the read", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m := f.createMember(t, o)
		pw := f.newPassword(m)
		must(t, f.store.SetPassword(f.ctx, f.project.ID, pw), "SetPassword")
		reg, _ := f.createTOTP(t, m, 10)

		pwRead, err := f.store.SealedValues(f.ctx, auth.SealedPassword, "", 10)
		must(t, err, "SealedValues(passwords)")
		setRead, err := f.store.SealedValues(f.ctx, auth.SealedRecoveryCodes, "", 10)
		must(t, err, "SealedValues(code sets)")
		if len(pwRead) != 1 || len(setRead) != 1 {
			t.Fatalf("read %d passwords and %d code sets, want 1 each", len(pwRead), len(setRead))
		}

		// Between the read and the write, the member changes password and rotates codes.
		newer := f.newPassword(m)
		must(t, f.store.SetPassword(f.ctx, f.project.ID, newer), "SetPassword(newer)")
		newSet := randomBytes(150)
		must(t, f.store.ReplaceRecoveryCodes(f.ctx, f.project.ID, reg.ID, newSet, newCodes(10)), "ReplaceRecoveryCodes")

		for _, c := range []struct {
			column auth.SealedColumn
			read   auth.SealedValue
		}{{auth.SealedPassword, pwRead[0]}, {auth.SealedRecoveryCodes, setRead[0]}} {
			n, err := f.store.ReplaceSealedValues(f.ctx, c.column, []auth.SealedReplacement{{Row: c.read.Row, Old: c.read.Sealed, New: resealed(c.read.Sealed)}})
			must(t, err, "ReplaceSealedValues("+string(c.column)+")")
			if n != 0 {
				t.Errorf("ReplaceSealedValues(%s) over a newer write changed %d rows, want 0", c.column, n)
			}
		}
		gotPW, err := f.store.Password(f.ctx, f.project.ID, m.ID)
		must(t, err, "Password")
		wantEqual(t, gotPW, newer, "the password written after the read")
		gotReg, err := f.store.TOTP(f.ctx, f.project.ID, m.ID)
		must(t, err, "TOTP")
		wantEqual(t, gotReg.SealedCodes, newSet, "the code set written after the read")
		wantEqual(t, gotReg.SealedSecret, reg.SealedSecret, "the TOTP secret")

		// A row deleted after the read stays deleted.
		secretRead, err := f.store.SealedValues(f.ctx, auth.SealedTOTPSecret, "", 10)
		must(t, err, "SealedValues(totp secrets)")
		_, err = f.deleteTOTP(f.ctx, f.project.ID, m.ID, func(*auth.Member) error { return nil })
		must(t, err, "DeleteTOTP")
		n, err := f.store.ReplaceSealedValues(f.ctx, auth.SealedTOTPSecret, []auth.SealedReplacement{{Row: secretRead[0].Row, Old: secretRead[0].Sealed, New: randomBytes(60)}})
		must(t, err, "ReplaceSealedValues(deleted row)")
		if n != 0 {
			t.Errorf("ReplaceSealedValues of a deleted row changed %d rows", n)
		}
		if _, err := f.store.TOTP(f.ctx, f.project.ID, m.ID); err == nil {
			t.Error("the deleted registration is back")
		}
	}},
	{"concurrent ReplaceSealedValues of one value: one wins", func(t *testing.T, f *fixture) {
		read, err := f.store.SealedValues(f.ctx, auth.SealedProjectPepper, "", 10)
		must(t, err, "SealedValues")
		const n = 16
		news := make([][]byte, n)
		for i := range news {
			news[i] = randomBytes(61)
		}
		counts := make([]int, n)
		errs := race(n, func(i int) error {
			var err error
			counts[i], err = f.store.ReplaceSealedValues(f.ctx, auth.SealedProjectPepper, []auth.SealedReplacement{{Row: f.project.ID, Old: f.project.SealedPepper, New: news[i]}})
			return err
		})
		if len(read) != 1 {
			t.Fatalf("SealedValues(peppers) = %d values, want 1", len(read))
		}
		winner := -1
		for i, err := range errs {
			must(t, err, "ReplaceSealedValues")
			if counts[i] == 1 {
				if winner >= 0 {
					t.Errorf("ReplaceSealedValues %d and %d both replaced the same value", winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatal("no ReplaceSealedValues replaced the value")
		}
		p, err := f.store.Project(f.ctx, f.project.ID)
		must(t, err, "Project")
		wantEqual(t, p.SealedPepper, news[winner], "the pepper")
	}},
}

// resealed stands for a value sealed anew: its bytes reversed, so it differs and is derived.
func resealed(b []byte) []byte {
	out := bytes.Clone(b)
	slices.Reverse(out)
	return out
}

// sealedFixture fills the store with a value of each sealed kind (a second project and its key,
// a webhook per project, members with a password, registrations with and without a sealed code
// set) and
// returns what SealedValues should return for each column, in row order.
func (f *fixture) sealedFixture(t *testing.T) map[auth.SealedColumn][]auth.SealedValue {
	t.Helper()
	want := map[auth.SealedColumn][]auth.SealedValue{}
	add := func(c auth.SealedColumn, v auth.SealedValue) { want[c] = append(want[c], v) }
	for _, p := range []auth.Project{f.project, f.otherProject(t)} {
		add(auth.SealedProjectPepper, auth.SealedValue{Row: p.ID, Owner: p.ID, Sealed: p.SealedPepper})
		keys, err := f.store.SigningKeys(f.ctx, p.ID)
		must(t, err, "SigningKeys")
		for _, k := range keys {
			add(auth.SealedSigningKey, auth.SealedValue{Row: k.KID, Owner: p.ID, ID: k.KID, Sealed: k.SealedPrivateKey})
		}
		w := f.createWebhook(t, p)
		add(auth.SealedWebhookSecret, auth.SealedValue{Row: w.ID, Owner: p.ID, ID: w.ID, Sealed: w.SealedSecret})
	}
	o := f.createOrganization(t)
	for i := range 5 {
		m := f.createMember(t, o)
		if i%2 == 0 {
			pw := f.newPassword(m)
			must(t, f.store.SetPassword(f.ctx, f.project.ID, pw), "SetPassword")
			add(auth.SealedPassword, auth.SealedValue{Row: m.ID, Owner: m.ID, ID: pw.ID, Sealed: pw.Sealed})
		}
		if i == 4 {
			continue // no registration
		}
		reg := f.newTOTP(m)
		if i == 3 {
			reg.SealedCodes = nil // strict storage keeps no sealed copy
		}
		must(t, f.store.CreateTOTP(f.ctx, f.project.ID, reg, newCodes(10)), "CreateTOTP")
		add(auth.SealedTOTPSecret, auth.SealedValue{Row: reg.ID, Owner: m.ID, ID: reg.ID, Sealed: reg.SealedSecret})
		if reg.SealedCodes != nil {
			add(auth.SealedRecoveryCodes, auth.SealedValue{Row: reg.ID, Owner: m.ID, ID: reg.ID, Sealed: reg.SealedCodes})
		}
	}
	for c := range want {
		slices.SortFunc(want[c], func(a, b auth.SealedValue) int { return strings.Compare(a.Row, b.Row) })
	}
	return want
}
