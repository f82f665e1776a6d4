package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// errApply is what the suite's apply functions refuse with, to prove a refused apply writes
// nothing and its error comes back unchanged.
var errApply = errors.New("storetest: apply refused")

// must stops the test when a setup step fails.
func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantErr checks err against the domain error want with errors.Is; want nil means success.
func wantErr(t *testing.T, err, want error, what string) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Errorf("%s: error %v, want none", what, err)
	case want != nil && err == nil:
		t.Errorf("%s: no error, want %v", what, want)
	case want != nil && !errors.Is(err, want):
		t.Errorf("%s: error %v, want %v", what, err, want)
	}
}

// wantEqual reports every difference between got and want.
func wantEqual(t *testing.T, got, want any, what string) {
	t.Helper()
	if d := diff(want, got); d != "" {
		t.Errorf("%s differs (-want +got):\n%s", what, d)
	}
}

// diff lists how got differs from want, one line per difference; "" when they are equal.
// Times are equal when they are the same instant and got is in UTC (zero stays zero); a nil
// slice or map equals an empty one; everything else must match exactly.
func diff(want, got any) string {
	var out []string
	diffValue("", reflect.ValueOf(want), reflect.ValueOf(got), &out)
	return strings.Join(out, "\n")
}

var timeType = reflect.TypeOf(time.Time{})

func diffValue(path string, w, g reflect.Value, out *[]string) {
	add := func(format string, args ...any) {
		p := path
		if p == "" {
			p = "(value)"
		}
		*out = append(*out, p+": "+fmt.Sprintf(format, args...))
	}
	if !w.IsValid() || !g.IsValid() {
		if w.IsValid() != g.IsValid() {
			add("- %s\n  + %s", show(w), show(g))
		}
		return
	}
	if w.Type() != g.Type() {
		add("- %s (%s)\n  + %s (%s)", show(w), w.Type(), show(g), g.Type())
		return
	}
	if w.Type() == timeType {
		wt, gt := w.Interface().(time.Time), g.Interface().(time.Time)
		switch {
		case wt.IsZero() || gt.IsZero():
			if wt.IsZero() != gt.IsZero() {
				add("- %v\n  + %v", wt, gt)
			}
		case !wt.Equal(gt):
			add("- %v\n  + %v", wt, gt)
		case gt.Location() != time.UTC:
			add("%v is in %v, want UTC", gt, gt.Location())
		}
		return
	}
	switch w.Kind() {
	case reflect.Slice:
		if w.Type().Elem().Kind() == reflect.Uint8 {
			if !bytes.Equal(w.Bytes(), g.Bytes()) {
				add("- %x\n  + %x", w.Bytes(), g.Bytes())
			}
			return
		}
		if w.Len() != g.Len() {
			add("length %d, want %d\n  - %s\n  + %s", g.Len(), w.Len(), show(w), show(g))
			return
		}
		for i := 0; i < w.Len(); i++ {
			diffValue(fmt.Sprintf("%s[%d]", path, i), w.Index(i), g.Index(i), out)
		}
	case reflect.Map:
		keys := map[string]reflect.Value{}
		for _, k := range append(w.MapKeys(), g.MapKeys()...) {
			keys[fmt.Sprint(k.Interface())] = k
		}
		names := make([]string, 0, len(keys))
		for n := range keys {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			k := keys[n]
			wv, gv := w.MapIndex(k), g.MapIndex(k)
			p := fmt.Sprintf("%s[%q]", path, n)
			switch {
			case !wv.IsValid():
				*out = append(*out, p+": unexpected key, + "+show(gv))
			case !gv.IsValid():
				*out = append(*out, p+": missing key, - "+show(wv))
			default:
				diffValue(p, wv, gv, out)
			}
		}
	case reflect.Pointer, reflect.Interface:
		if w.IsNil() || g.IsNil() {
			if w.IsNil() != g.IsNil() {
				add("- %s\n  + %s", show(w), show(g))
			}
			return
		}
		diffValue(path, w.Elem(), g.Elem(), out)
	case reflect.Struct:
		for i := 0; i < w.NumField(); i++ {
			if !w.Type().Field(i).IsExported() {
				continue
			}
			name := w.Type().Field(i).Name
			if path != "" {
				name = path + "." + name
			}
			diffValue(name, w.Field(i), g.Field(i), out)
		}
	default:
		if w.Interface() != g.Interface() {
			add("- %#v\n  + %#v", w.Interface(), g.Interface())
		}
	}
}

func show(v reflect.Value) string {
	if !v.IsValid() {
		return "<nil>"
	}
	return fmt.Sprintf("%+v", v.Interface())
}
