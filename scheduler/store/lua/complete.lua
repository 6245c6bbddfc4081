-- Close an operator's request (trigger, backfill) once its firings are all out, fenced: its
-- ledger line, its result for the command that waits on it, and its removal from the request
-- stream happen in one step, so a request is answered once and never handled again. The key that
-- makes a repeated ask wait for it goes in the same step: once answered, asking again is a new
-- request.
-- ledger.lua (`record`) is prepended to it.
--
-- KEYS[1]  the lease
-- KEYS[2]  the request stream; KEYS[3] the request's result (a hash)
-- KEYS[4]  the schedule's ledger (a stream), or the request stream again when there is none to write
-- KEYS[5]  the request's dedup set (dropped: the request is gone, it cannot run again)
-- KEYS[6]  the id of the queued request that asks the same (request.lua): dropped when it is this
--          one, kept when it names a later request (asked with --new)
-- ARGV[1]  the caller's lease token; ARGV[2] the request id
-- ARGV[3]  how long the result is kept, in ms
-- ARGV[4]  how long ledger lines are kept, in ms; ARGV[5] how many lines at most
-- ARGV[6]  how many result fields follow (n); ARGV[7 .. 6+n] the result's fields and values
-- ARGV[7+n ..] the ledger line's fields and values; none: no line
--
-- Returns 1, or -1 when the caller no longer holds the lease.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return -1
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local n = tonumber(ARGV[6])
local result, line = {}, {}
for i = 7, 6 + n do
    result[#result + 1] = ARGV[i]
end
for i = 7 + n, #ARGV do
    line[#line + 1] = ARGV[i]
end
redis.call('HSET', KEYS[3], unpack(result))
redis.call('PEXPIRE', KEYS[3], ARGV[3])
if #line > 0 then
    record(KEYS[4], line, now_ms, ARGV[4], ARGV[5])
end
redis.call('XDEL', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[5])
if redis.call('GET', KEYS[6]) == ARGV[2] then
    redis.call('DEL', KEYS[6])
end
return 1
