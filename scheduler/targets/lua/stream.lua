-- Deliver one message to a Redis Stream (XADD), the fields in a fixed order.
--
-- keys[1]  the queue's stream
-- message  firing_id, schedule, tenant, tick, enqueue_at, job, args (JSON text), queue, epoch
local function deliver(keys, message)
    redis.call('XADD', keys[1], '*',
        'firing_id', message.firing_id, 'schedule', message.schedule, 'tenant', message.tenant,
        'tick', message.tick, 'enqueue_at', message.enqueue_at, 'job', message.job,
        'args', message.args, 'queue', message.queue, 'epoch', message.epoch)
end
