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
-- Returns {moved, next, delivered}, or -1 when the caller no longer holds the lease. moved counts
-- the firings taken off the pending set; next is the earliest enqueue_at still pending in ms, or -1
-- when none is; delivered tells the caller's metrics what reached the queue, grouped and flat:
-- {schedule, lateness in ms (TIME minus enqueue_at), late (1 or 0), firings, schedule, ...}, one
-- group per distinct (schedule, lateness, late). The firings of one call came due together, so the
-- groups are few: the reply stays small however many firings move.
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
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local delivered, groups = {}, {}
for n = 1, #due, 2 do
    local id, at_ms = due[n], tonumber(due[n + 1])
    local body = redis.call('HGET', KEYS[3], id)
    if body then
        local message = cjson.decode(body)
        message.epoch = ARGV[2]
        -- late: more than misfire_grace after enqueue_at (a payload an earlier version wrote has no grace)
        message.late = message.grace ~= nil and now_ms - message.at > message.grace
        message.at, message.grace = nil, nil
        deliver(kind, target_keys, message, options, now)
        redis.call('HDEL', KEYS[3], id)
        local lateness, late = now_ms - at_ms, message.late and 1 or 0
        local group = message.schedule .. '\n' .. lateness .. '\n' .. late
        local at = groups[group]
        if at then
            delivered[at + 3] = delivered[at + 3] + 1
        else
            groups[group] = #delivered + 1
            delivered[#delivered + 1] = message.schedule
            delivered[#delivered + 1] = lateness
            delivered[#delivered + 1] = late
            delivered[#delivered + 1] = 1
        end
    end
    redis.call('ZREM', KEYS[2], id)
end
local moved = #due / 2
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if first[2] then
    return {moved, tonumber(first[2]), delivered}
end
return {moved, -1, delivered}
