-- Record which table the leader runs, for anyone to read, fenced like every other write.
--
-- KEYS[1]  the lease
-- KEYS[2]  the table record: a hash
-- ARGV[1]  the caller's lease token "<epoch>:<replica id>"
-- ARGV[2]  the fingerprint; ARGV[3] the table's path; ARGV[4] the replica; ARGV[5] its epoch
-- ARGV[6]  when it was loaded, by Redis's clock, as ISO 8601
--
-- Returns 1, or -1 when the caller no longer holds the lease.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return -1
end
redis.call('HSET', KEYS[2], 'fingerprint', ARGV[2], 'path', ARGV[3], 'replica', ARGV[4], 'epoch', ARGV[5],
    'loaded_at', ARGV[6])
return 1
