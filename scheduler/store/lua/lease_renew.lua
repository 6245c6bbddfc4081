-- Extend the lease, but only for the holder that took it (compare-and-set on the whole token).
--
-- KEYS[1]  the lease
-- ARGV[1]  the holder's token "<epoch>:<replica id>"
-- ARGV[2]  the lease TTL in milliseconds
--
-- Returns 1 when renewed, 0 when the lease is gone or held by another token.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
return 0
