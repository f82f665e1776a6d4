package api

import "testing"

func TestHasEscapedNUL(t *testing.T) {
	for in, want := range map[string]bool{
		`{"a":"x\u0000y"}`:        true,
		`{"a":"\\\u0000"}`:        true,  // an escaped backslash, then the NUL escape
		`{"a":"\\u0000"}`:         false, // a literal backslash followed by the text u0000
		`{"a":"\\\\u0000"}`:       false,
		`{"a":"u0000"}`:           false,
		`{"a":"ok","b":"\u0001"}`: false,
		`{}`:                      false,
	} {
		if got := hasEscapedNUL([]byte(in)); got != want {
			t.Errorf("hasEscapedNUL(%s) = %v, want %v", in, got, want)
		}
	}
}
