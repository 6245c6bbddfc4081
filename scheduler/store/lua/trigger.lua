-- Deliver one chunk of a manual firing (`scheduler trigger`), fenced, each tenant at most once.
-- scheduler/targets/lua/deliver.lua (`deliver(kind, keys, m, options, now)`) is prepended to it.
--
-- A manual firing has an id of its own, `<schedule>/<tenant>/manual-<request id>`, so it never
-- collides with a tick's firing; its tick and enqueue_at are the instant the operator asked.
--
-- KEYS[1]  the lease
-- KEYS[2]  the request's dedup set: the tenants already delivered for it
-- KEYS[3..] the target's keys for this queue
-- ARGV[1]  the caller's lease token; ARGV[2] its epoch
-- ARGV[3]  the dedup set's TTL in ms
-- ARGV[4]  the queue; ARGV[5] the schedule; ARGV[6] the request's instant (ISO 8601)
-- ARGV[7]  the request id; ARGV[8] the job; ARGV[9] args JSON
-- ARGV[10] the target's kind; ARGV[11] its options (JSON)
-- ARGV[12..] the tenants
--
-- Returns {delivered, duplicates}, or -1 when the caller no longer holds the lease.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return -1
end
local now = redis.call('TIME')
local target_keys = {}
for i = 3, #KEYS do
    target_keys[#target_keys + 1] = KEYS[i]
end
local kind, options = ARGV[10], cjson.decode(ARGV[11])
local delivered, duplicates = 0, 0
for i = 12, #ARGV do
    local tenant = ARGV[i]
    if redis.call('SADD', KEYS[2], tenant) == 1 then
        deliver(kind, target_keys, {
            firing_id = ARGV[5] .. '/' .. tenant .. '/manual-' .. ARGV[7],
            schedule = ARGV[5], tenant = tenant, tick = ARGV[6], enqueue_at = ARGV[6],
            job = ARGV[8], args = ARGV[9], queue = ARGV[4], epoch = ARGV[2], late = false,
        }, options, now)
        delivered = delivered + 1
    else
        duplicates = duplicates + 1
    end
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {delivered, duplicates}
