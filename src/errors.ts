/**
 * `mport/errors`: every error class mport defines, one file per layer under src/errors/ (mux,
 * tunnel, http, store, api). Every error mport raises on purpose is an MportError with a stable
 * string `code`, listed in PROTOCOL.md's error table with its layer (`static layer` on each
 * class); test/errors.test.ts walks this module's exports and fails on drift either way.
 *
 * @packageDocumentation
 */
export * from './errors/base.js'
export * from './errors/mux.js'
export * from './errors/tunnel.js'
export * from './errors/http.js'
export * from './errors/acme.js'
export * from './errors/store.js'
export * from './errors/api.js'
