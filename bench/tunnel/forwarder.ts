/**
 * Reference forwarders for the tunnel bench, one per process, each printing {"port": N}:
 *   tcp <target>        plain userspace copy 127.0.0.1:N → 127.0.0.1:target (no crypto, no mux)
 *   tls-exit <target>   TLS listener (test fixture certificate) → plain 127.0.0.1:target
 *   tls-entry <exit>    plain listener → one new TLS connection to the tls-exit per connection
 * Half-close crosses as half-close; either side failing tears both down.
 */
import net from 'node:net'
import tls from 'node:tls'
import { readFileSync } from 'node:fs'

const [mode, targetArg] = process.argv.slice(2)
const target = Number(targetArg)
if (!['tcp', 'tls-exit', 'tls-entry'].includes(mode ?? '') || !Number.isInteger(target)) {
  process.stderr.write('usage: forwarder.ts tcp|tls-exit|tls-entry <target port>\n')
  process.exit(2)
}
const fixture = (name: string): string => readFileSync(new URL(`../../test/fixtures/${name}`, import.meta.url), 'utf8')

let reported = 0
function pipeBoth (a: net.Socket, b: net.Socket): void {
  const kill = (err: Error): void => {
    if (reported++ < 5) process.stderr.write(`forwarder: ${err.message}\n`) // the first few, for the harness's failure report
    a.destroy()
    b.destroy()
  }
  a.on('error', kill)
  b.on('error', kill)
  a.pipe(b)
  b.pipe(a)
}

function dial (): net.Socket {
  if (mode === 'tls-entry') {
    return tls.connect({ host: '127.0.0.1', port: target, ca: fixture('cert.pem'), checkServerIdentity: () => undefined, noDelay: true, allowHalfOpen: true } as tls.ConnectionOptions)
  }
  return net.connect({ host: '127.0.0.1', port: target, noDelay: true, allowHalfOpen: true })
}

const onConnection = (visitor: net.Socket): void => {
  visitor.setNoDelay(true)
  pipeBoth(visitor, dial())
}

const server = mode === 'tls-exit'
  ? tls.createServer({ cert: fixture('cert.pem'), key: fixture('key.pem'), allowHalfOpen: true, noDelay: true } as tls.TlsOptions, onConnection)
  : net.createServer({ allowHalfOpen: true, noDelay: true }, onConnection)
server.on('tlsClientError', () => {})
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as net.AddressInfo).port }) + '\n')
})
process.on('SIGTERM', () => process.exit(0))
