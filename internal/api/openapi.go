package api

import _ "embed"

// openAPIDocument is the OpenAPI 3.1 description of every route the server registers, written
// by hand beside the handlers and held to them by TestOpenAPIDocumentsEveryRoute.
//
//go:embed openapi.json
var openAPIDocument []byte
