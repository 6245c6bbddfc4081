-- Give the lease up (compare-and-delete) and tell the standbys at once, so one takes over now.
--
-- KEYS[1]  the lease
-- ARGV[1]  the holder's token "<epoch>:<replica id>"
-- ARGV[2]  the pub/sub channel standbys listen on for a release
--
-- Returns 1 when released, 0 when the lease was not (or no longer) this token's.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('DEL', KEYS[1])
    redis.call('PUBLISH', ARGV[2], ARGV[1])
    return 1
end
return 0
