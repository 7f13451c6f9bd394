/**
 * A throwaway PostgreSQL cluster for tests: initdb into a temp dir, listen on 127.0.0.1 at a
 * random free port with its unix socket in the temp dir, fsync off; stopped and deleted in
 * teardown. Runs as the `postgres` user (via runuser) when the tests run as root.
 *
 * When PostgreSQL is not installed, `findPostgres()` says why; tests then skip with that reason,
 * except under CI (`process.env.CI`), where a missing PostgreSQL is a failure.
 */
import { execFile } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { chown, mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'

const run = promisify(execFile)

export interface PostgresServer {
  port: number
  /** URL of a fresh, empty database (each call creates one). */
  createDatabase (): Promise<string>
  stop (): Promise<void>
}

/** The bin directory holding initdb and pg_ctl, or the reason there is none. */
export function findPostgres (root = '/usr/lib/postgresql'): { bin: string } | { missing: string } {
  const versions = existsSync(root) ? readdirSync(root).filter(v => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : []
  for (const v of versions) {
    const bin = path.join(root, v, 'bin')
    if (existsSync(path.join(bin, 'initdb')) && existsSync(path.join(bin, 'pg_ctl'))) return { bin }
  }
  return { missing: `PostgreSQL is not installed (no initdb/pg_ctl under ${root}/*/bin); install it with "apt-get install -y postgresql" to run these tests` }
}

/**
 * Options for tap's t.test(): a skip reason when PostgreSQL is missing locally. Under CI it
 * never skips: the test runs and fails in startPostgres() with the same reason.
 */
export function postgresTestOptions (env: NodeJS.ProcessEnv = process.env, root?: string): { skip?: string } {
  const found = findPostgres(root)
  if ('bin' in found || env.CI) return {}
  return { skip: found.missing }
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

export async function startPostgres (): Promise<PostgresServer> {
  const found = findPostgres()
  if ('missing' in found) throw new Error(found.missing)
  const asRoot = process.getuid?.() === 0
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mport-pg-'))
  const data = path.join(dir, 'data')
  const log = path.join(dir, 'log')
  const exec = async (cmd: string, args: string[]): Promise<void> => {
    const file = path.join(found.bin, cmd)
    try {
      if (asRoot) await run('runuser', ['-u', 'postgres', '--', file, ...args], { timeout: 60_000 })
      else await run(file, args, { timeout: 60_000 })
    } catch (err) {
      const e = err as { stderr?: string, message: string }
      throw new Error(`${cmd} failed: ${e.stderr || e.message}`)
    }
  }
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']).catch(() => { throw new Error('there is no "postgres" system user to run the test cluster as') })
    const { stdout: gid } = await run('id', ['-g', 'postgres'])
    await chown(dir, Number(stdout.trim()), Number(gid.trim()))
  }
  await exec('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'])
  // A port chosen free may be taken before the server binds it: retry a few times.
  let port = 0
  let lastErr: Error | undefined
  for (let attempt = 0; attempt < 5; attempt++) {
    port = await freePort()
    try {
      await exec('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o',
        `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`, 'start'])
      lastErr = undefined
      break
    } catch (err) {
      lastErr = err as Error
    }
  }
  if (lastErr !== undefined) {
    await rm(dir, { recursive: true, force: true })
    throw lastErr
  }
  let n = 0
  const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' })
  await admin.connect()
  let stopped = false
  return {
    port,
    async createDatabase () {
      const name = `mport_test_${++n}`
      // A database name cannot be a bound parameter; this one is built from a counter only.
      await admin.query(`create database ${name}`)
      return `postgres://postgres@127.0.0.1:${port}/${name}`
    },
    async stop () {
      if (stopped) return
      stopped = true
      await admin.end().catch(() => {})
      await exec('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '60', 'stop']).catch(() => {})
      await rm(dir, { recursive: true, force: true })
    },
  }
}
