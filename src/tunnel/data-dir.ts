/**
 * The relay's data directory: a generated self-signed certificate and a generated access
 * token, created on first start and reused after (mode 0600 files in a 0700 directory).
 */
import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { loadOrCreateCertificate } from '../transport/certs.js'
import { generateToken } from './auth.js'

/** What prepareRelayData found or created in the data directory. */
export interface RelayData {
  /** The data directory. */
  dir: string
  /** PEM certificate for the relay's TLS listener. */
  cert: string
  /** Its PEM private key. */
  key: string
  /** The certificate's `sha256:` fingerprint, for clients to pin. */
  fingerprint: string
  /** True when this call generated the certificate (worth printing the fingerprint). */
  certCreated: boolean
  /** The relay-level access token; keep it secret. */
  token: string
  /** Path of the file holding `token` (mode 0600). */
  tokenFile: string
  /** True when this call generated the token. */
  tokenCreated: boolean
}

/** `$MPORT_DATA_DIR`, else `~/.mport` (or `./.mport` when there is no home directory). */
export function defaultDataDir (): string {
  if (process.env.MPORT_DATA_DIR) return process.env.MPORT_DATA_DIR
  const home = os.homedir()
  return home ? path.join(home, '.mport') : path.resolve('.mport')
}

/**
 * Loads the relay's certificate and token from `dir`, generating each on first start (the
 * certificate covers `hostnames` plus the loopback names); reused unchanged after that.
 */
export async function prepareRelayData (dir: string, hostnames: string[]): Promise<RelayData> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const { cert, key, fingerprint, created } = await loadOrCreateCertificate(dir, hostnames)
  const tokenFile = path.join(dir, 'token')
  let token: string
  let tokenCreated = false
  try {
    token = (await readFile(tokenFile, 'utf8')).trim()
    if (token === '') throw new Error('empty token file')
  } catch {
    token = generateToken()
    await writeFile(tokenFile, token + '\n', { mode: 0o600 })
    await chmod(tokenFile, 0o600)
    tokenCreated = true
  }
  return { dir, cert, key, fingerprint, certCreated: created, token, tokenFile, tokenCreated }
}
