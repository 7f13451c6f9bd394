/**
 * Load balancing through the real bins: two mport-connect processes join one group (its key
 * from MPORT_GROUP_KEY) and share the visitors; SIGTERM makes one drain, and every visitor
 * meanwhile and after is answered by the other; the key never appears in any output.
 */
import http from 'node:http'
import type net from 'node:net'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { cleanup, relayArgs, spawnBin, tmpDir, type BinProcess } from './helpers/spawn.js'
import { withTimeout } from './helpers/wait.js'

t.teardown(cleanup)

const KEY = 'bin-group-key-5d1c2e'

async function service (name: string): Promise<{ port: number, close (): Promise<void> }> {
  const server = http.createServer((req, res) => res.end(req.url === '/health' ? 'ok' : name))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }) }
}

function visit (port: number): Promise<string> {
  return withTimeout(new Promise<string>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, agent: false }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve(Buffer.concat(chunks).toString()))
    }).on('error', reject)
  }), { what: `a visitor on port ${port}`, timeoutMs: 30_000 })
}

async function visitors (n: number, concurrency: number, port: number): Promise<string[]> {
  const out: string[] = []
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < n) out.push(await visit(port))
  }))
  return out
}

t.test('two mport-connect processes in a group; SIGTERM drains one and no visitor is lost', async t => {
  const dataDir = path.join(tmpDir(), 'data')
  const relay = spawnBin('mport-relay', relayArgs(dataDir, ['--json']))
  t.teardown(() => relay.kill())
  const ev = await relay.waitEvent('listening')
  const token = readFileSync(path.join(dataDir, 'token'), 'utf8').trim()
  const a = await service('A')
  const b = await service('B')
  t.teardown(async () => { await a.close(); await b.close() })
  const connect = (port: number): BinProcess => spawnBin('mport-connect', [
    String(port), '--relay', `127.0.0.1:${String(ev.port)}`, '--token', token, '--fingerprint', String(ev.fingerprint),
    '--group', 'web', '--group-policy', 'roundrobin', '--health-check', 'http:/health', '--json', '--no-lease-file', '--drain-timeout', '20',
  ], { env: { MPORT_GROUP_KEY: KEY } })
  const ca = connect(a.port)
  t.teardown(() => ca.kill())
  const first = await ca.waitEvent('tunnel')
  const cb = connect(b.port)
  t.teardown(() => cb.kill())
  const second = await cb.waitEvent('tunnel')
  t.equal(second.remotePort, first.remotePort, 'both processes serve the same public port')
  const port = first.remotePort as number
  await cb.waitEvent('group', o => o.members === 2)
  const before = await visitors(20, 1, port)
  t.same([before.filter(x => x === 'A').length, before.filter(x => x === 'B').length], [10, 10], 'round robin across the two processes')

  const during = visitors(120, 6, port)
  cb.signal('SIGTERM')
  await cb.waitEvent('draining')
  const exit = await cb.waitExit()
  t.equal(exit.code, 0, 'the drained client exits 0')
  const answered = await during
  t.equal(answered.length, 120, 'every visitor during the drain was answered')
  t.ok(answered.every(x => x === 'A' || x === 'B'), 'by one of the services')
  const after = await visitors(30, 3, port)
  t.equal(after.filter(x => x === 'A').length, 30, 'after B left, A answers all')
  for (const p of [relay, ca, cb]) t.notOk(p.output.includes(KEY), `${p.name}'s output never shows the group key`)
})
