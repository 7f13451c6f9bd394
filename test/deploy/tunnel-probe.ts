/**
 * A tunnel through the relay in the image sandbox, run by rootfs.test.ts inside the sandbox's
 * network namespace (`nsenter -n`, the only place its relay is reachable): an echo server, the
 * real mport-connect bin exposing it, and a visitor sending bytes through the public port.
 * Prints one JSON line with what came back; the token comes in MPORT_TOKEN, never in argv.
 *
 *   tunnel-probe.ts RELAY_HOST:PORT FINGERPRINT BYTES
 */
import { createHash, randomBytes } from 'node:crypto'
import { cleanup, spawnBin } from '../helpers/spawn.js'
import { connectTo, roundTrip, startEcho } from '../helpers/tunnel.js'

const [relay, fingerprint, size] = process.argv.slice(2)
const token = process.env.MPORT_TOKEN
if (relay === undefined || fingerprint === undefined || size === undefined || token === undefined) {
  process.stderr.write('usage: MPORT_TOKEN=… tunnel-probe.ts RELAY_HOST:PORT FINGERPRINT BYTES\n')
  process.exit(2)
}

const echo = await startEcho()
const client = spawnBin('mport-connect', [String(echo.port), '--relay', relay, '--fingerprint', fingerprint, '--json', '--no-lease-file'], { env: { MPORT_TOKEN: token } })
try {
  const tunnel = await client.waitEvent('tunnel', () => true, 120_000)
  const data = randomBytes(Number(size))
  const echoed = await roundTrip(await connectTo(tunnel.remotePort as number), data)
  const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
  process.stdout.write(JSON.stringify({ url: tunnel.url, remotePort: tunnel.remotePort, sent: data.length, received: echoed.length, same: digest(echoed) === digest(data), tokenPrinted: client.output.includes(token) }) + '\n')
  client.signal('SIGTERM')
  await client.waitExit()
} finally {
  await echo.close()
  await cleanup()
}
