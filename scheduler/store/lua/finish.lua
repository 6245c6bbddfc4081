-- Finish a tick whose every chunk was accepted, and move the track's watermark, fenced.
-- The caller sends this only after every enqueue call of the tick succeeded: a tick that is not
-- finished keeps its dedup set, so a later leader that plans it again never sends a firing twice.
-- The tick's line of the decision ledger is written in the same step, so each finished tick (or
-- range of ticks skipped or paused) has exactly one line.
--
-- KEYS[1]  the lease
-- KEYS[2]  the tick's dedup set (dropped once the tick is recorded done)
-- KEYS[3]  the track's finished ticks: a sorted set, member and score the tick in ms
-- KEYS[4]  the track's watermark: the last tick handled, in ms
-- KEYS[5]  the schedule's ledger: a stream, one entry per decision (history.lua's layout)
-- KEYS[6]  the tick's unsent tenants (for a backfill to send), kept as long as the tick is remembered
-- ARGV[1]  the caller's lease token "<epoch>:<replica id>"
-- ARGV[2]  the tick in ms, or "" to only move the watermark (a first-seen track, skipped ticks)
-- ARGV[3]  the watermark to advance to, in ms; it never moves back
-- ARGV[4]  the TTL of the watermark and the finished set, in ms
-- ARGV[5]  how long finished ticks are remembered, in ms, counted back from Redis's clock
-- ARGV[6]  how long ledger lines are kept, in ms; ARGV[7] how many lines at most
-- ARGV[8]  how many tenants the tick did not send (paused, dropped by catch-up): n
-- ARGV[9..8+n] those tenants
-- ARGV[9+n..] the ledger line's fields and values; none: no line
--
-- Returns 1, or -1 when the caller no longer holds the lease.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return -1
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if ARGV[2] ~= '' then
    redis.call('ZADD', KEYS[3], ARGV[2], ARGV[2])
    redis.call('DEL', KEYS[2])
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now_ms - tonumber(ARGV[5])))
    redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
local unsent = tonumber(ARGV[8])
if ARGV[2] ~= '' and unsent > 0 then
    for i = 9, 8 + unsent, 5000 do
        redis.call('SADD', KEYS[6], unpack(ARGV, i, math.min(i + 4999, 8 + unsent)))
    end
    redis.call('PEXPIRE', KEYS[6], ARGV[5])
end
local current = tonumber(redis.call('GET', KEYS[4]) or '-1')
if tonumber(ARGV[3]) > current then
    redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])
else
    redis.call('PEXPIRE', KEYS[4], ARGV[4])
end
if #ARGV > 8 + unsent then
    local line = {}
    for i = 9 + unsent, #ARGV do
        line[#line + 1] = ARGV[i]
    end
    record(KEYS[5], line, now_ms, ARGV[6], ARGV[7])
end
return 1
