/**
 * A node's listeners for tcp ports that other nodes hold: every node of the cluster answers on
 * every leased port of its own address, and forwards what arrives to the holder. A node on the
 * same address as the holder (several processes on one machine) cannot and need not: visitors
 * of that address already reach the holder.
 */
import net from 'node:net'

export class PortMirrors {
  readonly #host: string
  readonly #onVisitor: (port: number, socket: net.Socket) => void
  readonly #servers = new Map<number, net.Server>()
  /** Visitor sockets by port: cut when that port's listener closes (its tunnel moved here or went away). */
  readonly #sockets = new Map<number, Set<net.Socket>>()

  constructor (host: string, onVisitor: (port: number, socket: net.Socket) => void) {
    this.#host = host
    this.#onVisitor = onVisitor
  }

  has (port: number): boolean { return this.#servers.has(port) }

  ports (): number[] { return [...this.#servers.keys()] }

  /** Listens on `port`; false when the address is taken (tried again on the next round). */
  async open (port: number): Promise<boolean> {
    if (this.#servers.has(port)) return true
    const sockets = new Set<net.Socket>()
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, socket => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      this.#onVisitor(port, socket)
    })
    const ok = await new Promise<boolean>(resolve => {
      server.once('error', () => resolve(false))
      server.listen({ host: this.#host, port, exclusive: true }, () => resolve(true))
    })
    if (!ok) return false
    server.removeAllListeners('error')
    server.on('error', () => {}) // accept errors (EMFILE) are transient
    if (this.#servers.has(port)) { server.close(); return true } // opened twice at once
    this.#servers.set(port, server)
    this.#sockets.set(port, sockets)
    return true
  }

  /** Stops listening on `port` (a local tunnel is about to bind it, or nobody holds it any more). */
  async close (port: number): Promise<void> {
    const server = this.#servers.get(port)
    if (server === undefined) return
    this.#servers.delete(port)
    const closed = new Promise<void>(resolve => server.close(() => resolve()))
    for (const s of this.#sockets.get(port) ?? []) s.destroy()
    this.#sockets.delete(port)
    await closed
  }

  async closeAll (): Promise<void> {
    await Promise.all(this.ports().map(p => this.close(p)))
  }
}
