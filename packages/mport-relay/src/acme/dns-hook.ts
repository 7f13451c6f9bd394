/**
 * DNS-01 through an operator's command, in the style of lego's exec provider and certbot's
 * manual hooks: `<hook> add <fqdn> <value>` creates the TXT record `<fqdn>` (for example
 * `_acme-challenge.example.com`) with `<value>` and exits 0 once it is published;
 * `<hook> remove <fqdn> <value>` deletes it. Run without a shell, with a time limit; the value
 * is a digest, not a secret, so argv is fine. Any DNS provider works with a small script.
 */
import { execFile } from 'node:child_process'
import { AcmeDnsHookError } from 'mport/errors'

/** How long one hook call may take (propagation waits included). */
export const DNS_HOOK_TIMEOUT = 5 * 60 * 1000 // ms

export async function runDnsHook (hook: string, action: 'add' | 'remove', fqdn: string, value: string, timeoutMs = DNS_HOOK_TIMEOUT): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    execFile(hook, [action, fqdn, value], { timeout: timeoutMs, maxBuffer: 64 * 1024 }, (err, _stdout, stderr) => {
      if (err === null) return resolve()
      const e = err as NodeJS.ErrnoException & { killed?: boolean, code?: number | string }
      const why = e.killed === true ? `timed out after ${timeoutMs / 1000} s` : typeof e.code === 'number' ? `exited with ${e.code}` : (e.code ?? e.message)
      const last = stderr.trim().split('\n').pop()
      reject(new AcmeDnsHookError(`${hook} ${action} ${fqdn}: ${why}${last !== undefined && last !== '' ? ` (${last.slice(0, 200)})` : ''}`))
    })
  })
}
