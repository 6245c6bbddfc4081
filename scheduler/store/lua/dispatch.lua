-- Move pending firings whose enqueue_at has come (by Redis's clock) to their queue, fenced.
-- scheduler/targets/lua/deliver.lua (`deliver(kind, keys, m, options, now)`) is prepended to it.
--
-- KEYS[1]  the lease
-- KEYS[2]  the queue's pending firings, scored by enqueue_at in ms
-- KEYS[3]  the queue's pending payloads: firing id -> message JSON
-- KEYS[4..] the target's keys for this queue
-- ARGV[1]  the caller's lease token "<epoch>:<replica id>"
-- ARGV[2]  the caller's epoch (written into each message it delivers)
-- ARGV[3]  how many firings to move at most
-- ARGV[4]  the target's kind; ARGV[5] its options (JSON)
--
-- Returns {moved, next}: next is the earliest enqueue_at still pending in ms, or -1 when none is;
-- -1 when the caller no longer holds the lease.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return -1
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local target_keys = {}
for i = 4, #KEYS do
    target_keys[#target_keys + 1] = KEYS[i]
end
local kind, options = ARGV[4], cjson.decode(ARGV[5])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms, 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
    local body = redis.call('HGET', KEYS[3], id)
    if body then
        local message = cjson.decode(body)
        message.epoch = ARGV[2]
        -- late: more than misfire_grace after enqueue_at (a payload an earlier version wrote has no grace)
        message.late = message.grace ~= nil and now_ms - message.at > message.grace
        message.at, message.grace = nil, nil
        deliver(kind, target_keys, message, options, now)
        redis.call('HDEL', KEYS[3], id)
    end
    redis.call('ZREM', KEYS[2], id)
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if first[2] then
    return {#due, tonumber(first[2])}
end
return {#due, -1}
