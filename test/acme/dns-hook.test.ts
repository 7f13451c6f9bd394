/** The DNS-01 hook runner: arguments without a shell, a failure or a timeout as AcmeDnsHookError naming the exit and stderr's last line. */
import t from 'tap'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { runDnsHook } from '../../packages/mport-relay/src/acme/dns-hook.js'

const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-dns-hook-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function script (name: string, body: string): string {
  const file = path.join(dir, name)
  writeFileSync(file, `#!/bin/sh\n${body}\n`)
  chmodSync(file, 0o755)
  return file
}

t.test('add and remove get the action, the name and the value as separate arguments', async t => {
  const out = path.join(dir, 'args')
  const hook = script('ok.sh', `for a in "$@"; do printf '[%s]' "$a" >> '${out}'; done; echo >> '${out}'`)
  await runDnsHook(hook, 'add', '_acme-challenge.example.com', 'v a;l$(id)')
  await runDnsHook(hook, 'remove', '_acme-challenge.example.com', 'v a;l$(id)')
  t.equal(readFileSync(out, 'utf8'), '[add][_acme-challenge.example.com][v a;l$(id)]\n[remove][_acme-challenge.example.com][v a;l$(id)]\n', 'no shell ever sees the value')
})

t.test('a failing hook: its exit code and the last line of its stderr', async t => {
  const hook = script('fail.sh', 'echo "calling the DNS API" >&2; echo "401 unauthorized: check DNS_TOKEN" >&2; exit 3')
  await t.rejects(runDnsHook(hook, 'add', '_acme-challenge.example.com', 'v'), { code: 'MPORT_ERR_ACME_DNS_HOOK_FAILED', message: /add _acme-challenge\.example\.com: exited with 3 \(401 unauthorized: check DNS_TOKEN\)$/ })
})

t.test('a missing hook and a hook that hangs', async t => {
  await t.rejects(runDnsHook(path.join(dir, 'nope.sh'), 'add', 'x', 'v'), { code: 'MPORT_ERR_ACME_DNS_HOOK_FAILED', message: /ENOENT/ })
  const slow = script('slow.sh', 'exec sleep 30')
  await t.rejects(runDnsHook(slow, 'add', 'x', 'v', 300), { code: 'MPORT_ERR_ACME_DNS_HOOK_FAILED', message: /timed out after 0\.3 s/ })
})
