/**
 * A throwaway pebble (Let's Encrypt's ACME test server, Debian package `pebble`) for tests: its
 * own config in a temp dir, its ACME and management listeners on free 127.0.0.1 ports, its
 * HTTP-01 checks sent to the port the test names (the relay's shared HTTP port), and names
 * resolved by a tiny DNS responder on loopback (node:dgram) that answers A 127.0.0.1 for the
 * test's names and TXT for the DNS-01 records the test publishes. Nothing leaves loopback.
 *
 * When pebble is missing, `pebbleTestOptions()` skips locally with the reason; under CI it never
 * skips, and `startPebble()` fails with that reason.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import dgram from 'node:dgram'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import https from 'node:https'
import os from 'node:os'
import path from 'node:path'
import { generateSelfSigned } from '../../src/transport/certs.js'
import { closedPort } from './ports.js'
import { waitFor } from './wait.js'

export const PEBBLE = '/usr/bin/pebble'

/** tap options: a skip reason when pebble is missing locally; never a skip under CI. */
export function pebbleTestOptions (env: NodeJS.ProcessEnv = process.env): { skip?: string } {
  if (existsSync(PEBBLE) || env.CI) return {}
  return { skip: `pebble is not installed; install it with "apt-get install -y pebble" to run this test` }
}

/** Answers DNS queries over UDP on 127.0.0.1: A 127.0.0.1 for `names`, TXT from `txt`, NXDOMAIN for the rest. */
export class LoopbackDns {
  readonly names = new Set<string>()
  /** TXT records by lowercase name. */
  readonly txt = new Map<string, string[]>()
  /** Every question asked, as `TYPE name`. */
  readonly asked: string[] = []
  readonly #socket = dgram.createSocket('udp4')
  port = 0

  async listen (): Promise<void> {
    this.#socket.on('message', (msg, rinfo) => {
      const reply = this.#answer(msg)
      if (reply !== undefined) this.#socket.send(reply, rinfo.port, rinfo.address)
    })
    await new Promise<void>(resolve => this.#socket.bind(0, '127.0.0.1', () => resolve()))
    this.port = this.#socket.address().port
  }

  close (): void {
    this.#socket.close()
  }

  #answer (msg: Buffer): Buffer | undefined {
    if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return undefined
    const labels: string[] = []
    let off = 12
    while (off < msg.length && msg[off] !== 0) {
      const len = msg[off]!
      labels.push(msg.subarray(off + 1, off + 1 + len).toString('latin1'))
      off += 1 + len
    }
    off += 1
    if (off + 4 > msg.length) return undefined
    const qtype = msg.readUInt16BE(off)
    const question = msg.subarray(12, off + 4)
    const name = labels.join('.').toLowerCase()
    this.asked.push(`${qtype} ${name}`)
    const answers: Buffer[] = []
    if (qtype === 1 && this.names.has(name)) answers.push(rr(1, Buffer.from([127, 0, 0, 1])))
    if (qtype === 16) {
      for (const v of this.txt.get(name) ?? []) answers.push(rr(16, Buffer.concat([Buffer.from([v.length]), Buffer.from(v, 'latin1')])))
    }
    const known = this.names.has(name) || this.txt.has(name)
    const header = Buffer.alloc(12)
    header.writeUInt16BE(msg.readUInt16BE(0), 0) // id
    header.writeUInt16BE(0x8400 | (msg.readUInt16BE(2) & 0x0100) | (known ? 0 : 3), 2) // response, authoritative, RD copied, NOERROR/NXDOMAIN
    header.writeUInt16BE(1, 4)
    header.writeUInt16BE(answers.length, 6)
    return Buffer.concat([header, question, ...answers])
  }
}

/** One resource record pointing back at the question's name (compression pointer to offset 12). */
function rr (type: number, data: Buffer): Buffer {
  const b = Buffer.alloc(12)
  b.writeUInt16BE(0xc00c, 0)
  b.writeUInt16BE(type, 2)
  b.writeUInt16BE(1, 4) // IN
  b.writeUInt32BE(1, 6) // TTL 1 s
  b.writeUInt16BE(data.length, 10)
  return Buffer.concat([b, data])
}

export interface Pebble {
  directoryUrl: string
  /** PEM of the certificate pebble's own listeners present (trust it for the directory: acme `ca`). */
  listenerCa: string
  /** PEM of the root that signs the certificates pebble issues (from its management endpoint). */
  root (): Promise<string>
  /** pebble's stdout and stderr so far (for failure messages). */
  output (): string
  close (): Promise<void>
}

/** Starts pebble validating HTTP-01 against `httpPort` on 127.0.0.1, resolving names through `dns`. */
export async function startPebble (o: { httpPort: number, dns: LoopbackDns, alwaysValid?: boolean }): Promise<Pebble> {
  if (!existsSync(PEBBLE)) throw new Error(`pebble is not installed (${PEBBLE}); apt-get install -y pebble`)
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mport-pebble-'))
  const tlsPair = await generateSelfSigned(['127.0.0.1'])
  await writeFile(path.join(dir, 'cert.pem'), tlsPair.cert)
  await writeFile(path.join(dir, 'key.pem'), tlsPair.key)
  const [acmePort, mgmtPort, tlsPort] = [await closedPort(), await closedPort(), await closedPort()]
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${mgmtPort}`,
      certificate: path.join(dir, 'cert.pem'),
      privateKey: path.join(dir, 'key.pem'),
      httpPort: o.httpPort,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
    },
  }))
  let out = ''
  const child: ChildProcess = spawn(PEBBLE, ['-config', path.join(dir, 'config.json'), '-dnsserver', `127.0.0.1:${o.dns.port}`], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PEBBLE_VA_NOSLEEP: '1', PEBBLE_AUTHZREUSE: '0', PEBBLE_WFE_NONCEREJECT: '0', ...(o.alwaysValid === true ? { PEBBLE_VA_ALWAYS_VALID: '1' } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout!.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr!.on('data', (c: Buffer) => { out += c.toString() })
  const get = (port: number, p: string): Promise<{ status: number, body: string }> => new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: p, ca: tlsPair.cert }, res => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    }).on('error', reject)
  })
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`pebble exited with ${child.exitCode}: ${out}`)
      return await get(acmePort, '/dir').then(r => r.status === 200, () => false)
    }, { timeoutMs: 30_000, intervalMs: 100, what: `pebble's directory on 127.0.0.1:${acmePort}`, diag: () => out })
  } catch (err) {
    child.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  return {
    directoryUrl: `https://127.0.0.1:${acmePort}/dir`,
    listenerCa: tlsPair.cert,
    root: async () => {
      const r = await get(mgmtPort, '/roots/0')
      if (r.status !== 200) throw new Error(`pebble's /roots/0 answered ${r.status}`)
      return r.body
    },
    output: () => out,
    close: async () => {
      if (child.exitCode === null) {
        const exited = new Promise(resolve => child.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      }
      await rm(dir, { recursive: true, force: true })
    },
  }
}
