/**
 * The relay's data directory: a generated self-signed certificate and a generated access
 * token, created on first start and reused after (mode 0600 files in a 0700 directory).
 */
import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { loadOrCreateCertificate } from '../transport/certs.js'
import { generateToken } from './auth.js'

export interface RelayData {
  dir: string
  cert: string
  key: string
  fingerprint: string
  certCreated: boolean
  token: string
  tokenFile: string
  tokenCreated: boolean
}

/** `$MPORT_DATA_DIR`, else `~/.mport` (or `./.mport` when there is no home directory). */
export function defaultDataDir (): string {
  if (process.env.MPORT_DATA_DIR) return process.env.MPORT_DATA_DIR
  const home = os.homedir()
  return home ? path.join(home, '.mport') : path.resolve('.mport')
}

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
