/**
 * mport-connect: the client's command line beyond the tunnel itself: `login`, `logout` and
 * `tokens` against a relay's REST API, with the credentials file they keep, and `forget` for
 * the store of trusted relay certificates.
 *
 * @packageDocumentation
 */
export { connectAccount, credentialsPath, readCredentials, normalizeApi, loginForRelay, type StoredSession, type StoredTunnelToken, type LoginForRelay, type CredentialsFile } from './account-commands.js'
export { forgetRelay, type ForgetResult } from './forget.js'
