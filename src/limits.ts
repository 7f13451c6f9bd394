/** Quota building blocks for the relay: token buckets, bandwidth shaping, connection-rate limits, plan quotas. */
export { TokenBucket, type TokenBucketOptions, type RateListener } from './limits/token-bucket.js'
export { Throttle, type ThrottleOptions } from './limits/throttle.js'
export { ConnectionRateLimiter, type ConnectionRateLimiterOptions, type RateVerdict } from './limits/rate-limiter.js'
export { QuotaGate, quotaError, type QuotaGateOptions, type QuotaLimits, type QuotaLimitName, type QuotaUsage, type QuotaVerdict } from './limits/quota.js'
