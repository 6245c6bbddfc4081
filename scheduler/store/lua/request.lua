-- Queue an operator's request (trigger, backfill) for the leader, unless the same one is queued
-- already: asking again while the first waits for its answer must not fire twice. Not fenced: the
-- operator's command sends it, and it writes no firing. The key of the queued request goes with
-- its answer (complete.lua); its TTL and the check that the request is still in the stream keep
-- a key left by a request removed otherwise from holding anything back.
--
-- KEYS[1]  the request stream
-- KEYS[2]  the id of the queued request that asks the same (a string)
-- ARGV[1]  how long that id is kept, in ms
-- ARGV[2]  "1": add a request even when the same one is queued (--new); "0": wait for that one
-- ARGV[3 ..] the request's fields and values
--
-- Returns {1, the new request's id}, or {0, the id of the same request already queued}.
if ARGV[2] ~= '1' then
    local queued = redis.call('GET', KEYS[2])
    if queued and #redis.call('XRANGE', KEYS[1], queued, queued) > 0 then
        redis.call('PEXPIRE', KEYS[2], ARGV[1])
        return {0, queued}
    end
end
local fields = {}
for i = 3, #ARGV do
    fields[#fields + 1] = ARGV[i]
end
local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
return {1, id}
