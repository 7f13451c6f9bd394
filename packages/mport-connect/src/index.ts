/**
 * mport-connect: the client's command line beyond the tunnel itself: `login`, `logout` and
 * `tokens` against a relay's REST API, with the credentials file they keep, `forget` for
 * the store of trusted relay certificates, and the check of the client's config file.
 *
 * @packageDocumentation
 */
export { connectAccount, credentialsPath, readCredentials, normalizeApi, loginForRelay, type StoredSession, type StoredTunnelToken, type LoginForRelay, type CredentialsFile } from './account-commands.js'
export { forgetRelay, type ForgetResult } from './forget.js'
export { validateClientConfig, CLIENT_CONFIG_KEYS, type ClientFileConfig } from './config/client-config.js'
export { parseTunnelList, parseTunnelObject, TUNNEL_KEYS, type SecretSources } from './config/tunnel-entries.js'
