-- Accept one chunk of a tick's firings, fenced by the lease, each firing exactly once.
-- The target's `deliver(keys, message)` is prepended to this script when it is loaded.
--
-- KEYS[1]  the lease
-- KEYS[2]  this tick's dedup set: the tenants already accepted for (track, tick)
-- KEYS[3]  the track's finished ticks: a sorted set, member and score the tick in ms
-- KEYS[4]  the track's watermark: the last tick handled, in ms
-- KEYS[5]  the queue's pending firings (waiting out their jitter), scored by enqueue_at in ms
-- KEYS[6]  the queue's pending payloads: firing id -> message JSON
-- KEYS[7]  the set of queues that have pending firings (so none is ever forgotten)
-- KEYS[8..] the target's keys for this queue (for a stream target: the stream)
-- ARGV[1]  the caller's lease token "<epoch>:<replica id>"
-- ARGV[2]  the caller's epoch
-- ARGV[3]  the tick in ms, or "" for a call that only advances the watermark
-- ARGV[4]  "1" when this chunk finishes the tick: mark it done, drop its dedup set, advance
-- ARGV[5]  the watermark to advance to when finishing, in ms ("" for none)
-- ARGV[6]  when the dedup set expires (unix ms): max(tick, now) + catch-up window + 24 h
-- ARGV[7]  the watermark's TTL in ms
-- ARGV[8]  finished ticks older than this (unix ms) are forgotten
-- ARGV[9]  the queue name
-- ARGV[10] the schedule; ARGV[11] the tick as YYYY-MM-DDTHH:MM:SSZ; ARGV[12] the job; ARGV[13] args JSON
-- ARGV[14..] the firings, three values each: tenant, enqueue_at in ms, enqueue_at as ISO 8601
--
-- Returns {delivered, pending, duplicates}, or {-1, 0, 0} when the caller no longer holds the lease.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return {-1, 0, 0}
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local delivered, pending, duplicates = 0, 0, 0
local target_keys = {}
for i = 8, #KEYS do
    target_keys[#target_keys + 1] = KEYS[i]
end
local tick = ARGV[3]
local done = tick ~= '' and redis.call('ZSCORE', KEYS[3], tick)
for i = 14, #ARGV, 3 do
    local tenant, at_ms = ARGV[i], tonumber(ARGV[i + 1])
    if done or redis.call('SADD', KEYS[2], tenant) == 0 then
        duplicates = duplicates + 1
    else
        local message = {
            firing_id = ARGV[10] .. '/' .. tenant .. '/' .. ARGV[11],
            schedule = ARGV[10], tenant = tenant, tick = ARGV[11], enqueue_at = ARGV[i + 2],
            job = ARGV[12], args = ARGV[13], queue = ARGV[9], epoch = ARGV[2],
        }
        if at_ms <= now_ms then
            deliver(target_keys, message)
            delivered = delivered + 1
        else
            redis.call('HSET', KEYS[6], message.firing_id, cjson.encode(message))
            redis.call('ZADD', KEYS[5], at_ms, message.firing_id)
            pending = pending + 1
        end
    end
end
if tick ~= '' and not done and #ARGV >= 14 then
    redis.call('PEXPIREAT', KEYS[2], ARGV[6])
end
if pending > 0 then
    redis.call('SADD', KEYS[7], ARGV[9])
end
if ARGV[4] == '1' then
    if tick ~= '' then
        redis.call('ZADD', KEYS[3], tick, tick)
        redis.call('DEL', KEYS[2])
        redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[8])
        redis.call('PEXPIRE', KEYS[3], ARGV[7])
    end
    local current = tonumber(redis.call('GET', KEYS[4]) or '-1')
    if ARGV[5] ~= '' and tonumber(ARGV[5]) > current then
        redis.call('SET', KEYS[4], ARGV[5], 'PX', ARGV[7])
    else
        redis.call('PEXPIRE', KEYS[4], ARGV[7])
    end
end
return {delivered, pending, duplicates}
