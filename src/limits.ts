/** Rate building blocks for the relay: token buckets, bandwidth shaping, connection-rate limits. Plan quotas are Account's (`mport/relay`). */
export { TokenBucket, type TokenBucketOptions, type RateListener } from './limits/token-bucket.js'
export { Throttle, type ThrottleOptions } from './limits/throttle.js'
export { ConnectionRateLimiter, type ConnectionRateLimiterOptions, type RateVerdict } from './limits/rate-limiter.js'
export { RateLimitedLog, type RateLimitedLogOptions, type Admission } from './limits/rate-limited-log.js'
