-- Accept one chunk of a tick's firings, fenced by the lease, each firing exactly once.
-- scheduler/targets/lua/deliver.lua (`deliver(kind, keys, m, options, now)`) is prepended to it.
--
-- A firing is written first and recorded in the dedup set right after, so a write that fails (a
-- wrong-type key, say) aborts the script before the firing is recorded: a retry delivers it then.
-- This call never marks the tick done: finish.lua does, once every chunk of the tick was accepted.
--
-- KEYS[1]  the lease
-- KEYS[2]  this tick's dedup set: the tenants already accepted for (track, tick)
-- KEYS[3]  the track's finished ticks: a sorted set, member and score the tick in ms
-- KEYS[4]  the queue's pending firings (waiting out their jitter), scored by enqueue_at in ms
-- KEYS[5]  the queue's pending payloads: firing id -> message JSON
-- KEYS[6]  the set of queues that have pending firings (so none is ever forgotten)
-- KEYS[7]  the tick's unsent tenants: those a finished tick did not send (paused, dropped by catch-up)
-- KEYS[8..] the target's keys for this queue (for a stream target: the stream)
-- ARGV[1]  the caller's lease token "<epoch>:<replica id>"
-- ARGV[2]  the caller's epoch
-- ARGV[3]  the tick in ms
-- ARGV[4]  the dedup set's TTL in ms (as long as the watermark's: an unfinished tick outlives it)
-- ARGV[5]  the queue name
-- ARGV[6]  the schedule; ARGV[7] the tick as YYYY-MM-DDTHH:MM:SSZ; ARGV[8] the job; ARGV[9] args JSON
-- ARGV[10] the target's kind; ARGV[11] its options (JSON); ARGV[12] misfire_grace in ms
-- ARGV[13] "1" for a backfill: a finished tick still sends its unsent tenants (KEYS[7]), each once
--          (removed from the set as it is written); else "": a finished tick sends nothing
-- ARGV[14..] the firings, three values each: tenant, enqueue_at in ms, enqueue_at as ISO 8601
--
-- Returns {delivered, pending, duplicates, late, now_ms}, or -1 when the caller no longer holds the
-- lease. late counts the delivered firings marked late; now_ms is the TIME every firing of this call
-- was judged by, so the caller knows each delivered firing's lateness (now_ms - its enqueue_at)
-- without a reply per firing: a firing whose enqueue_at <= now_ms that is not a duplicate was
-- delivered. Due means enqueue_at <= Redis's own clock (TIME), the one clock every replica shares;
-- a firing delivered more than misfire_grace after its enqueue_at is marked late, on that clock too.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return -1
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local firings = (#ARGV - 13) / 3
local finished = redis.call('ZSCORE', KEYS[3], ARGV[3])
if finished and ARGV[13] ~= '1' then
    return {0, 0, firings, 0, now_ms}
end
if firings == 0 then
    return {0, 0, 0, 0, now_ms}
end
local target_keys = {}
for i = 8, #KEYS do
    target_keys[#target_keys + 1] = KEYS[i]
end
local kind, options, grace = ARGV[10], cjson.decode(ARGV[11]), tonumber(ARGV[12])
local tenants = {}
for i = 14, #ARGV, 3 do
    tenants[#tenants + 1] = ARGV[i]
end
-- known[n] == 1: already sent. A finished tick sent every tenant but its unsent ones.
local known = redis.call('SMISMEMBER', finished and KEYS[7] or KEYS[2], unpack(tenants))
if finished then
    for n = 1, #known do
        known[n] = 1 - known[n]
    end
end
local delivered, pending, duplicates, late = 0, 0, 0, 0
local here = {}
for n, tenant in ipairs(tenants) do
    if known[n] == 1 or here[tenant] then
        duplicates = duplicates + 1
    else
        here[tenant] = true
        local i = 14 + (n - 1) * 3
        local at_ms = tonumber(ARGV[i + 1])
        local message = {
            firing_id = ARGV[6] .. '/' .. tenant .. '/' .. ARGV[7],
            schedule = ARGV[6], tenant = tenant, tick = ARGV[7], enqueue_at = ARGV[i + 2],
            job = ARGV[8], args = ARGV[9], queue = ARGV[5], epoch = ARGV[2],
        }
        if at_ms <= now_ms then
            message.late = now_ms - at_ms > grace
            deliver(kind, target_keys, message, options, now)
            delivered = delivered + 1
            if message.late then
                late = late + 1
            end
        else
            message.at, message.grace = at_ms, grace
            redis.call('HSET', KEYS[5], message.firing_id, cjson.encode(message))
            redis.call('ZADD', KEYS[4], at_ms, message.firing_id)
            pending = pending + 1
        end
        if finished then
            redis.call('SREM', KEYS[7], tenant)
        else
            redis.call('SADD', KEYS[2], tenant)
        end
    end
end
if delivered + pending > 0 and not finished then
    redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
if pending > 0 then
    redis.call('SADD', KEYS[6], ARGV[5])
end
return {delivered, pending, duplicates, late, now_ms}
