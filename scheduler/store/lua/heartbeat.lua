-- A replica says it is alive, on Redis's clock; replicas silent for too long are forgotten.
-- Not fenced: every replica, leading or not, writes its own heartbeat.
--
-- KEYS[1]  replica id -> last heartbeat in ms (a sorted set)
-- KEYS[2]  replica id -> what it reported (a hash of JSON)
-- ARGV[1]  the replica id; ARGV[2] its report (JSON); ARGV[3] forget replicas silent this long, in ms
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now_ms - tonumber(ARGV[3])))
if #gone > 0 then
    redis.call('ZREM', KEYS[1], unpack(gone))
    redis.call('HDEL', KEYS[2], unpack(gone))
end
redis.call('ZADD', KEYS[1], now_ms, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
