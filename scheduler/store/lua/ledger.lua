-- The decision ledger's one writer, prepended to the scripts that write it (finish, complete).
-- A schedule's ledger is a stream whose entry ids are Redis's clock, so lines older than the
-- retention are trimmed by id (MINID), and MAXLEN bounds a schedule that ticks every second.
local function record(key, fields, now_ms, keep_ms, max_lines)
    redis.call('XADD', key, 'MINID', '~', now_ms - tonumber(keep_ms), '*', unpack(fields))
    redis.call('XTRIM', key, 'MAXLEN', '~', max_lines)
    redis.call('PEXPIRE', key, keep_ms)
end
