/**
 * One visitor of a load-balancing group, from its pick to a member that has its stream. The
 * stream is opened on the member the group picks, with the visitor stream header riding on
 * the SYN; the visitor's bytes are held back until the client acknowledges the stream (one
 * round trip). A stream that fails before that (the member's session died or is going away,
 * the client reset it) never reached a local service, so the visitor is moved to the next
 * member: no new visitor is refused while a member is up, and none reaches two services.
 */
import type net from 'node:net'
import type { MuxStream } from '../mux/stream.js'
import { StreamState } from '../mux/stream.js'
import { SessionClosedError } from '../errors.js'
import type { GroupHolder, GroupMember, TunnelGroup } from './tunnel-group.js'

/**
 * Opens the visitor's stream on a member: the opened stream (in a record the caller tracks),
 * `'refused'` when the visitor is refused outright (rate, plan: no other member is tried), or
 * undefined when this member cannot take it now (try the next).
 */
export type OpenOnMember<C extends GroupHolder, T> = (member: GroupMember<C>) => T | 'refused' | undefined

/**
 * Resolves with the record of the stream a member acknowledged, or undefined when the visitor
 * was refused, left, or every ready member failed it. `abandon` is told of each stream given
 * up before its acknowledgement (to untrack it), with why.
 */
export function openInGroup<C extends GroupHolder, T extends { stream: MuxStream }> (
  group: TunnelGroup<C>, visitor: net.Socket, open: OpenOnMember<C, T>, abandon: (record: T, err: Error) => void,
): Promise<T | undefined> {
  return new Promise(resolve => {
    const tried = new Set<GroupMember<C>>()
    let pending: { record: T, stream: MuxStream, failed: () => void, established: () => void } | undefined
    const settle = (record: T | undefined): void => {
      visitor.off('close', left)
      resolve(record)
    }
    // The visitor left while its stream waited for the member: nothing more to try.
    const left = (): void => {
      const p = pending
      pending = undefined
      if (p !== undefined) {
        detach(p)
        p.stream.destroy()
        abandon(p.record, new SessionClosedError('the visitor left before a member acknowledged its stream'))
      }
      settle(undefined)
    }
    const detach = (p: NonNullable<typeof pending>): void => {
      p.stream.off('established', p.established)
      p.stream.off('close', p.failed)
    }
    const next = (): void => {
      for (let m = group.pick(tried); m !== undefined; m = group.pick(tried)) {
        tried.add(m)
        const record = open(m)
        if (record === 'refused') return settle(undefined)
        if (record === undefined) continue
        const stream = record.stream
        stream.on('error', ignore) // reported by whoever pipes it; before that, a failure only moves the visitor on
        if (stream.state === StreamState.Established) return settle(record)
        const p = {
          record,
          stream,
          established: (): void => { detach(p); pending = undefined; settle(record) },
          failed: (): void => {
            detach(p)
            pending = undefined
            abandon(record, stream.errored ?? new SessionClosedError('the member closed the stream before acknowledging it'))
            next()
          },
        }
        pending = p
        stream.once('established', p.established)
        stream.once('close', p.failed)
        return
      }
      settle(undefined)
    }
    if (visitor.destroyed) return settle(undefined)
    visitor.once('close', left)
    next()
  })
}

function ignore (): void {}
