/** Reading a stream to its end, bounded. */
import type { Readable } from 'node:stream'
import { withTimeout } from './wait.js'

/** Everything `s` emits until 'end', concatenated; rejects on 'error' or after `timeoutMs` (default 20 s). */
export function readAll (s: Readable, what: string, timeoutMs = 20_000): Promise<Buffer> {
  const chunks: Buffer[] = []
  return withTimeout(new Promise<Buffer>((resolve, reject) => {
    s.on('data', (c: Buffer) => chunks.push(c))
    s.once('end', () => resolve(Buffer.concat(chunks)))
    s.once('error', reject)
  }), { timeoutMs, what })
}
