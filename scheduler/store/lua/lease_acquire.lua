-- Take the leader lease if nobody holds it, with a fencing epoch that only grows.
--
-- KEYS[1]  the lease: a string "<epoch>:<replica id>", with a TTL
-- KEYS[2]  the epoch counter (INCR'd once per acquisition, never reset)
-- ARGV[1]  the replica id asking
-- ARGV[2]  the lease TTL in milliseconds
--
-- Returns {epoch, ""} when the lease was taken, {0, holder} when "<epoch>:<replica>" holds it.
local holder = redis.call('GET', KEYS[1])
if holder then
    return {0, holder}
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], epoch .. ':' .. ARGV[1], 'NX', 'PX', ARGV[2])
return {epoch, ''}
