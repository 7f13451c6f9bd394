/**
 * `mport/gc-tuning`: opt-in V8 settings for a process whose job is forwarding bytes (the bins
 * call it; an embedding application decides for itself).
 *
 * @packageDocumentation
 */
export { tuneGcForForwarding, countFreshReadBytes, forwardingGcCollections, FORWARDING_GC_FLAGS, DEFAULT_YOUNG_BUFFER_BUDGET, type ForwardingGcOptions } from './transport/gc-tuning.js'
