// Package secret holds sparekey's cryptographic building blocks: recovery-code generation and
// normalisation, keyed hashing, the AES-256-GCM keyring that protects stored secrets, opaque
// tokens, and the RS256 signer behind session JWTs and the JWKS.
//
// It knows nothing of HTTP, SQL or the Stytch data model; the domain package composes it.
package secret
