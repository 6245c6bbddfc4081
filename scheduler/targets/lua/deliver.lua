-- Write one firing to its queue, in the format of the queue's type (docs/queues.md).
-- The enqueue, dispatch and relay scripts start with this file.
--
-- m     the firing: firing_id, schedule, tenant, tick, enqueue_at, job, args (JSON text), queue,
--       epoch (decimal text), late (boolean)
-- kind  'stream' (also the outbox: a stream in the scheduler's Redis), 'sidekiq' or 'celery'
-- keys  the target's keys: stream {stream}, outbox {stream, set of outboxes},
--       sidekiq {the queues set, the queue's list}, celery {the queue's list}
-- o     the target's options: name (the worker-side queue), retry, active_job; outbox (its queue)
-- now   Redis's TIME reply

-- The firing as one JSON object, fields in the stream's order. args is spliced in as the table's
-- own JSON text, so an empty list stays a list (cjson would read it back as an empty object).
local function firing_json(m, extra)
    return '{"firing_id":' .. cjson.encode(m.firing_id) .. ',"schedule":' .. cjson.encode(m.schedule)
        .. ',"tenant":' .. cjson.encode(m.tenant) .. ',"tick":' .. cjson.encode(m.tick)
        .. ',"enqueue_at":' .. cjson.encode(m.enqueue_at) .. ',"job":' .. cjson.encode(m.job)
        .. ',"args":' .. m.args .. ',"queue":' .. cjson.encode(m.queue) .. ',"epoch":' .. m.epoch
        .. ',"late":' .. (m.late and 'true' or 'false') .. (extra or '') .. '}'
end

-- An encoded non-empty object with one more field, given as JSON text, spliced in front.
local function with_field(key, json, object)
    return '{"' .. key .. '":' .. json .. ',' .. string.sub(cjson.encode(object), 2)
end

-- uuid.uuid5(uuid.NAMESPACE_URL, name) as Python computes it, so a worker can derive it too.
local NAMESPACE_URL = string.char(0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1,
                                  0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8)
local function uuid5(name)
    local h = redis.sha1hex(NAMESPACE_URL .. name)
    local variant = string.format('%x', tonumber(string.sub(h, 17, 17), 16) % 4 + 8)
    return string.sub(h, 1, 8) .. '-' .. string.sub(h, 9, 12) .. '-5' .. string.sub(h, 14, 16) .. '-'
        .. variant .. string.sub(h, 18, 20) .. '-' .. string.sub(h, 21, 32)
end

-- Sidekiq's job JSON, pushed as Sidekiq's client pushes it (SADD queues, LPUSH queue:NAME).
-- With active_job, the job is Rails' ActiveJob Sidekiq adapter wrapping an ActiveJob payload.
local function sidekiq(keys, m, o, now)
    local at = tonumber(now[1]) + tonumber(now[2]) / 1000000
    local job = {queue = o.name, jid = string.sub(redis.sha1hex(m.firing_id), 1, 24), retry = o.retry,
                 created_at = at, enqueued_at = at}
    local args
    if o.active_job then
        job.class = 'ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper'
        job.wrapped = m.job
        local payload = {job_class = m.job, job_id = uuid5(m.firing_id), provider_job_id = cjson.null,
                         queue_name = o.name, priority = cjson.null, executions = 0,
                         exception_executions = {}, locale = 'en', timezone = 'UTC',
                         enqueued_at = m.enqueue_at}
        local firing = firing_json(m, ',"_aj_hash_with_indifferent_access":true')
        args = '[' .. with_field('arguments', '[' .. firing .. ']', payload) .. ']'
    else
        job.class = m.job
        args = '[' .. firing_json(m) .. ']'
    end
    redis.call('SADD', keys[1], o.name)
    redis.call('LPUSH', keys[2], with_field('args', args, job))
end

-- A Celery task message (protocol 2) as kombu's Redis transport stores it: LPUSH onto the list
-- named after the queue, the body as plain JSON text (without body_encoding kombu takes it as is).
local function celery(keys, m, o)
    local id = uuid5(m.firing_id)
    local body = '[[' .. firing_json(m) .. '],{},{"callbacks":null,"errbacks":null,"chain":null,"chord":null}]'
    redis.call('LPUSH', keys[1], cjson.encode({
        body = body, ['content-encoding'] = 'utf-8', ['content-type'] = 'application/json',
        headers = {lang = 'py', task = m.job, id = id, shadow = cjson.null, eta = cjson.null,
                   expires = cjson.null, group = cjson.null, group_index = cjson.null, retries = 0,
                   timelimit = {cjson.null, cjson.null}, root_id = id, parent_id = cjson.null,
                   argsrepr = '(' .. m.firing_id .. ',)', kwargsrepr = '{}', origin = 'scheduler',
                   ignore_result = false},
        properties = {correlation_id = id, reply_to = '', delivery_mode = 2,
                      delivery_info = {exchange = '', routing_key = o.name}, priority = 0,
                      delivery_tag = id},
    }))
end

local function deliver(kind, keys, m, o, now)
    if kind == 'sidekiq' then
        sidekiq(keys, m, o, now)
    elseif kind == 'celery' then
        celery(keys, m, o)
    else
        redis.call('XADD', keys[1], '*',
            'firing_id', m.firing_id, 'schedule', m.schedule, 'tenant', m.tenant, 'tick', m.tick,
            'enqueue_at', m.enqueue_at, 'job', m.job, 'args', m.args, 'queue', m.queue,
            'epoch', m.epoch, 'late', m.late and 'true' or 'false')
        if o.outbox then
            redis.call('SADD', keys[2], o.outbox)
        end
    end
end
