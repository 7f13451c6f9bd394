/**
 * `mport-connect --config` reloaded with SIGHUP (issue 15), real relay and client bins on
 * loopback. A 50 MiB checksummed transfer runs through tunnel a across the reload; the new
 * file adds b, changes c (an allow_ip now excludes 127.0.0.1; it keeps its public port) and
 * drops d. After it: b serves, c refuses 127.0.0.1 on the same port, d's port is closed, the
 * lease file names a, b and c, and a's transfer ends intact. Then a broken file and SIGHUP:
 * rejected with the reason, a and b still serve; a changed relay: one line saying it needs a
 * restart, the tunnels stay. Last, kill -9 and the same command with the edited file: the moved
 * lease file gives a, b and c their public ports back.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { cleanup, relayArgs, spawnBin, tmpDir } from './helpers/spawn.js'
import { connectTo, roundTrip, startEcho } from './helpers/tunnel.js'
import { sha256 } from './helpers/digest.js'
import { waitFor } from './helpers/wait.js'

t.teardown(cleanup)

const TRANSFER = 50 * 1024 * 1024
/** Generous bounds: the bins run from source on a shared 2-core machine. */
const BOUND_MS = 60_000

/** A visitor that echoes `data` through `port`, or 'refused' when the relay resets or refuses it. */
async function echoOrRefused (port: number, data: Buffer): Promise<string> {
  try {
    const back = await roundTrip(await connectTo(port), data)
    return back.length === 0 ? 'refused' : sha256(back)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ECONNRESET' || code === 'ECONNREFUSED' || code === 'EPIPE') return 'refused'
    throw err
  }
}

/** A long transfer through `port`: the bytes echoed back are hashed as they arrive. */
async function startTransfer (port: number): Promise<{ received (): number, send (b: Buffer): void, end (): Promise<string> }> {
  const s = await connectTo(port)
  const hash = createHash('sha256')
  let received = 0
  const ended = new Promise<string>((resolve, reject) => {
    s.on('data', (d: Buffer) => { hash.update(d); received += d.length })
    s.once('end', () => resolve(hash.digest('hex')))
    s.once('error', reject)
  })
  return {
    received: () => received,
    send: b => { s.write(b) },
    end: async () => { s.end(); return await ended },
  }
}

t.test('SIGHUP: b added, c changed, d removed while a 50 MiB transfer runs through a; a broken file is rejected', async t => {
  const dir = tmpDir()
  const dataDir = path.join(dir, 'data')
  const relay = spawnBin('mport-relay', relayArgs(dataDir, ['--json']))
  t.teardown(() => relay.kill())
  const listening = await relay.waitEvent('listening')
  const token = readFileSync(path.join(dataDir, 'token'), 'utf8').trim()
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const home = tmpDir('mport-reload-home-')
  const leases = path.join(home, '.config', 'mport', 'leases')
  const tokenFile = path.join(dir, 'token')
  writeFileSync(tokenFile, token)
  const configFile = path.join(dir, 'client.yaml')
  const config = (tunnels: string[], relayAddress = `127.0.0.1:${listening.port as number}`): void => writeFileSync(configFile, [
    `relay: ${relayAddress}`,
    `token_file: ${tokenFile}`,
    `fingerprint: ${listening.fingerprint as string}`,
    'tunnels:',
    ...tunnels,
    '',
  ].join('\n'))
  const tunnel = (name: string, extra: string[] = []): string[] => [`  - name: ${name}`, `    local: ${echo.port}`, ...extra.map(l => `    ${l}`)]
  config([...tunnel('a', ['allow_ip: [127.0.0.1]']), ...tunnel('c'), ...tunnel('d')])
  const client = spawnBin('mport-connect', ['--config', configFile, '--json'], { env: { HOME: home, XDG_CONFIG_HOME: path.join(home, '.config') } })
  t.teardown(() => client.kill())
  const port = async (name: string, after = 0): Promise<number> => {
    let found: number | undefined
    await waitFor(() => {
      found = client.jsonLines().slice(after).find(e => e.event === 'tunnel' && e.name === name)?.remotePort as number | undefined
      return found !== undefined
    }, { what: `the "${name}" tunnel line`, timeoutMs: BOUND_MS, diag: () => client.stdout })
    return found!
  }
  const [a, c, d] = [await port('a'), await port('c'), await port('d')]
  const probe = randomBytes(16 * 1024)
  t.equal(await echoOrRefused(d, probe), sha256(probe), 'before: d serves')
  t.equal(await echoOrRefused(c, probe), sha256(probe), 'before: c serves 127.0.0.1')

  // The transfer: the first half is echoed before the reload, the second after it, on one connection.
  const data = randomBytes(TRANSFER)
  const half = TRANSFER / 2
  const transferStart = Date.now()
  const transfer = await startTransfer(a)
  transfer.send(data.subarray(0, half))
  await waitFor(() => transfer.received() >= half, { what: 'the first half of the transfer echoed', timeoutMs: BOUND_MS })

  const before = client.lines().length
  config([...tunnel('a', ['allow_ip: [127.0.0.1]']), ...tunnel('b'), ...tunnel('c', ['allow_ip: [10.0.0.0/8]'])])
  const hup = Date.now()
  client.signal('SIGHUP')
  const reload = await client.waitEvent('reload', undefined, BOUND_MS)
  const reloaded = Date.now() - hup
  t.match(reload, { added: ['b'], removed: ['d'], changed: ['c'], unchanged: ['a'], restartNeeded: [] }, 'the reload event names every change')
  t.equal(reload.msg, 'reload: +b -d ~c', 'and its line says it in one line')
  const b = await port('b', before)
  const c2 = await port('c', before)
  t.equal(c2, c, 'the changed tunnel c kept its public port')
  t.equal(await echoOrRefused(b, probe), sha256(probe), 'after: b serves')
  t.comment(`SIGHUP to the reload event: ${reloaded} ms; to b serving a visitor: ${Date.now() - hup} ms (reported, not asserted)`)
  t.equal(await echoOrRefused(c2, probe), 'refused', 'after: c has the new allow_ip (127.0.0.1 refused)')
  t.equal(await echoOrRefused(d, probe), 'refused', 'after: d is gone (its port is closed)')
  t.notOk(client.jsonLines().slice(before).some(e => e.event === 'tunnel' && e.name === 'a'), 'a was not touched (no new tunnel line)')
  await waitFor(() => {
    const files = readdirSync(leases)
    if (files.length !== 1) return false
    const doc = JSON.parse(readFileSync(path.join(leases, files[0]!), 'utf8')) as { tunnels: Record<string, unknown> }
    return JSON.stringify(Object.keys(doc.tunnels).sort()) === JSON.stringify(['a', 'b', 'c'])
  }, { what: 'one lease file, naming a, b and c', timeoutMs: BOUND_MS, diag: () => readdirSync(leases).map(f => readFileSync(path.join(leases, f), 'utf8')).join('\n') })
  t.pass('the lease file follows the tunnels: one file, naming a, b and c')

  transfer.send(data.subarray(half))
  t.equal(await transfer.end(), sha256(data), 'a: the 50 MiB transfer across the reload arrived intact')
  t.comment(`a: 50 MiB echoed across the reload in ${Date.now() - transferStart} ms, including the pause for the checks`)

  // A broken file: rejected whole, with the reason; the running tunnels stay.
  const lines = client.lines().length
  writeFileSync(configFile, `${readFileSync(configFile, 'utf8')}    alow_ip: [127.0.0.1]\n`)
  client.signal('SIGHUP')
  const rejected = await client.waitEvent('reload-rejected', undefined, BOUND_MS)
  t.equal(rejected.reason, `invalid config "alow_ip": unknown key "alow_ip" in tunnel "c" in ${configFile}; did you mean "allow_ip"? [MPORT_ERR_INVALID_CONFIG]`, 'the reason, naming the key and the tunnel')
  t.equal(await echoOrRefused(a, probe), sha256(probe), 'a still serves')
  t.equal(await echoOrRefused(b, probe), sha256(probe), 'b still serves')
  t.notOk(client.jsonLines().slice(lines).some(e => e.event === 'reload' || e.event === 'tunnel'), 'nothing was applied')

  // A changed relay cannot be applied live: one line, and the rest applies (here: nothing else changed).
  config([...tunnel('a', ['allow_ip: [127.0.0.1]']), ...tunnel('b'), ...tunnel('c', ['allow_ip: [10.0.0.0/8]'])], '127.0.0.1:1')
  client.signal('SIGHUP')
  const warned = await client.waitEvent('warning', e => Array.isArray(e.restartNeeded), BOUND_MS)
  t.same(warned.restartNeeded, ['relay'], 'one warning naming what needs a restart')
  t.equal(warned.msg, 'reload: relay changed: that needs a restart; the running connection keeps the old value', 'in one line')
  const again = await client.waitEvent('reload', e => (e.restartNeeded as string[]).includes('relay'), BOUND_MS)
  t.match(again, { added: [], removed: [], changed: [], unchanged: ['a', 'b', 'c'] }, 'the tunnels are unchanged')
  t.equal(await echoOrRefused(a, probe), sha256(probe), 'a still serves over the old connection')

  t.notOk(client.output.includes(token), 'the token is never printed')

  // kill -9, then the same command with the file as edited: the lease file moved with the
  // tunnel list, so the new process reclaims the lease and every port comes back.
  config([...tunnel('a', ['allow_ip: [127.0.0.1]']), ...tunnel('b'), ...tunnel('c', ['allow_ip: [10.0.0.0/8]'])])
  await client.kill()
  const again2 = spawnBin('mport-connect', ['--config', configFile, '--json'], { env: { HOME: home, XDG_CONFIG_HOME: path.join(home, '.config') } })
  t.teardown(() => again2.kill())
  const connected = await again2.waitEvent('connected', undefined, BOUND_MS)
  t.equal(connected.resumed, true, 'the restarted client resumed the lease from the moved lease file')
  const portsAfter: Record<string, number> = {}
  for (const name of ['a', 'b', 'c']) portsAfter[name] = (await again2.waitEvent('tunnel', e => e.name === name, BOUND_MS)).remotePort as number
  t.same(portsAfter, { a, b, c }, 'a, b and c have their public ports back')
  t.equal(await echoOrRefused(b, probe), sha256(probe), 'b serves from the restarted client')
  again2.signal('SIGINT')
  t.equal((await again2.waitExit(BOUND_MS)).code, 0, 'SIGINT: exit 0')
  relay.signal('SIGTERM')
  t.equal((await relay.waitExit(BOUND_MS)).code, 0, 'relay exits 0')
})
