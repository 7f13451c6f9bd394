/**
 * The ACME account key, kept in the data dir (`<data>/acme/account-key.pem`, mode 0600) so the
 * relay stays one account at its CA across restarts (rate limits and contact are per account).
 */
import { readFile, mkdir } from 'node:fs/promises'
import path from 'node:path'
import acme from 'acme-client'
import { writeAtomic } from 'mport/transport'

export async function loadOrCreateAccountKey (dataDir: string): Promise<string> {
  const dir = path.join(dataDir, 'acme')
  const file = path.join(dir, 'account-key.pem')
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const key = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString()
  await writeAtomic(file, key, 0o600)
  return key
}
