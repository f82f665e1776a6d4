package storetest

import (
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

var projectTests = []test{
	{"CreateProject stores the project and its signing key", func(t *testing.T, f *fixture) {
		p := auth.Project{ID: newID("project"), SecretDigest: randomBytes(32), SealedPepper: randomBytes(61), CreatedAt: f.now}
		key := newSigningKey(p.ID, f.now)
		must(t, f.store.CreateProject(f.ctx, p, key), "CreateProject")

		got, err := f.store.Project(f.ctx, p.ID)
		must(t, err, "Project")
		wantEqual(t, got, p, "Project")
		keys, err := f.store.SigningKeys(f.ctx, p.ID)
		must(t, err, "SigningKeys")
		wantEqual(t, keys, []auth.SigningKey{key}, "SigningKeys")
	}},
	{"Project of an unknown id is ErrProjectNotFound", func(t *testing.T, f *fixture) {
		_, err := f.store.Project(f.ctx, newID("project"))
		wantErr(t, err, auth.ErrProjectNotFound, "Project(unknown)")
		_, err = f.store.Project(f.ctx, "")
		wantErr(t, err, auth.ErrProjectNotFound, `Project("")`)
	}},
	{"Projects lists every project oldest first", func(t *testing.T, f *fixture) {
		// Inserted out of order, so insertion order cannot pass for age order.
		late := f.createProject(t, f.now.Add(2*time.Hour))
		early := f.createProject(t, f.now)
		middle := f.createProject(t, f.now.Add(time.Hour))
		got, err := f.store.Projects(f.ctx)
		must(t, err, "Projects")
		wantEqual(t, got, []auth.Project{f.project, early, middle, late}, "Projects")
	}},
	{"SigningKeys are scoped by project", func(t *testing.T, f *fixture) {
		other := f.otherProject(t)
		mine, err := f.store.SigningKeys(f.ctx, f.project.ID)
		must(t, err, "SigningKeys")
		theirs, err := f.store.SigningKeys(f.ctx, other.ID)
		must(t, err, "SigningKeys(other)")
		if len(mine) != 1 || len(theirs) != 1 || mine[0].KID == theirs[0].KID {
			t.Errorf("SigningKeys: %d keys and %d keys, want one each and distinct", len(mine), len(theirs))
		}
		for _, k := range append(mine, theirs...) {
			if k.KID != k.JWK.KID {
				t.Errorf("key %s carries JWK kid %s", k.KID, k.JWK.KID)
			}
		}
		if len(mine) == 1 && mine[0].ProjectID != f.project.ID {
			t.Errorf("SigningKeys: ProjectID %q, want %q", mine[0].ProjectID, f.project.ID)
		}
		none, err := f.store.SigningKeys(f.ctx, newID("project"))
		must(t, err, "SigningKeys(unknown)")
		if len(none) != 0 {
			t.Errorf("SigningKeys(unknown project) = %d keys, want none", len(none))
		}
	}},
}
