-- Deliver firings from an outbox into a target's own Redis (a Sidekiq or Celery Redis that is not
-- the scheduler's), each at most once while its marker lives: a relay that died after this call
-- but before removing the firings from the outbox sends them again, and they are skipped here.
-- scheduler/targets/lua/deliver.lua is prepended to it.
--
-- KEYS[1..n]  the target's keys (n = ARGV[3])
-- KEYS[n+1..] one marker key per firing, in the order of the firings
-- ARGV[1]  the target's kind; ARGV[2] its options (JSON); ARGV[3] n; ARGV[4] the markers' TTL in ms
-- ARGV[5..] the firings, ten values each, as the outbox holds them: firing_id, schedule, tenant,
--          tick, enqueue_at, job, args, queue, epoch, late
--
-- Returns how many firings were written (the others had been written before).
local kind, options, n = ARGV[1], cjson.decode(ARGV[2]), tonumber(ARGV[3])
local target_keys = {}
for i = 1, n do
    target_keys[i] = KEYS[i]
end
local now = redis.call('TIME')
local written = 0
for f = 0, (#ARGV - 4) / 10 - 1 do
    local i = 5 + f * 10
    if redis.call('SET', KEYS[n + 1 + f], '1', 'NX', 'PX', ARGV[4]) then
        deliver(kind, target_keys, {
            firing_id = ARGV[i], schedule = ARGV[i + 1], tenant = ARGV[i + 2], tick = ARGV[i + 3],
            enqueue_at = ARGV[i + 4], job = ARGV[i + 5], args = ARGV[i + 6], queue = ARGV[i + 7],
            epoch = ARGV[i + 8], late = ARGV[i + 9] == 'true',
        }, options, now)
        written = written + 1
    end
end
return written
