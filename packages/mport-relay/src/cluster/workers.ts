/**
 * Several relay processes on one host (`--workers N`), so one relay host is not capped at one
 * core: node:cluster's primary owns the shared listeners (control port, HTTP(S) ports, API and
 * ops ports) and hands each new connection to a worker in turn. Each worker is a full relay and
 * a node of the cluster of its own (node id `<id>-w<i>`, its own link listener): a visitor
 * handed to a worker that does not hold its tunnel is forwarded over the link, like between
 * hosts. tcp tunnel ports are bound by the worker holding the tunnel alone (exclusive).
 *
 * The primary runs no relay: it starts the workers, starts a dead one again after a second,
 * and passes SIGTERM, SIGINT and SIGHUP on to them.
 */
import cluster, { type Worker } from 'node:cluster'

/** The environment variable that tells a worker its index (1…N). */
export const WORKER_ENV = 'MPORT_WORKER_INDEX'

/** This process's worker index, when it is a worker started by superviseWorkers. */
export function workerIndex (env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = Number(env[WORKER_ENV])
  return cluster.isWorker && Number.isInteger(v) && v > 0 ? v : undefined
}

/** True in the process that should supervise `count` workers rather than serve. */
export function isSupervisor (count: number): boolean {
  return count > 1 && cluster.isPrimary
}

/** How the supervisor reports: one line and its fields per event. */
export type SupervisorLog = (event: 'worker-exit' | 'stopping', line: string, fields: Record<string, unknown>) => void

/** Runs `count` workers until SIGTERM or SIGINT has stopped them all; resolves with the exit code. */
export function superviseWorkers (count: number, log: SupervisorLog, restartDelayMs = 1000): Promise<number> {
  const workers = new Map<number, Worker>()
  let stopping = false
  return new Promise(resolve => {
    const fork = (i: number): void => {
      const w = cluster.fork({ [WORKER_ENV]: String(i) })
      workers.set(i, w)
      w.on('exit', (code, signal) => {
        workers.delete(i)
        if (stopping) {
          if (workers.size === 0) resolve(0)
          return
        }
        log('worker-exit', `worker ${i} exited (${code ?? signal}); starting it again in ${restartDelayMs} ms`, { worker: i, code, signal })
        setTimeout(() => { if (!stopping) fork(i) }, restartDelayMs)
      })
    }
    for (let i = 1; i <= count; i++) fork(i)
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) { for (const w of workers.values()) w.process.kill('SIGKILL'); return } // a second signal: do not wait
      stopping = true
      log('stopping', `${signal}: stopping ${workers.size} workers`, { signal })
      if (workers.size === 0) resolve(0)
      for (const w of workers.values()) w.process.kill(signal)
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
    process.on('SIGHUP', () => { for (const w of workers.values()) w.process.kill('SIGHUP') }) // each worker re-reads --config
  })
}
