-- Shared prelude of the job system's atomic Redis scripts (lua/shield/redis/*.lua),
-- run by Redis 7.0 (Lua 5.1 with cjson). The runtime sends every script as
-- common.lua .. "\n" .. <script>.lua, so the locals below are in scope of each.
--
-- Calling convention, the same for every script (the runtime always passes the
-- same five keys and the same three leading arguments):
--   KEYS[1]  task stream S          shield:ingestion_queue
--   KEYS[2]  retry zset R           <S>:retry, scored by due time (epoch ms)
--   KEYS[3]  dead-letter stream D   <S>:dead
--   KEYS[4]  events stream E        shield:events
--   KEYS[5]  dirty-jobs set         shield:jobs:dirty
--   ARGV[1]  now, epoch milliseconds (the caller's clock)
--   ARGV[2]  events stream MAXLEN (trimmed approximately, MAXLEN ~)
--   ARGV[3]  jobs.status_ttl, seconds a final job's hash and done set are kept
--   ARGV[4..] the script's own arguments (see the script's header)
--
-- Per-job keys are derived from ids inside the scripts (job:<id>, job:<id>:done,
-- shield:idempotency:<key>) rather than passed in KEYS: the job system runs on a
-- single Redis instance, never a cluster, so undeclared keys are safe.
--
-- Job hash job:<id>: status (queued|processing|completed|failed|cancelled),
-- job_type, metadata (JSON), chunks_total, chunks_processed, chunks_failed,
-- chunks_skipped, created_at, started_at, completed_at, error_message (the first
-- failure), rev (incremented by every change; clean.lua compares it), and
-- count:<name> for each count its chunks reported (settle.lua). Every time
-- (created_at, started_at, completed_at, failed_at, due_at) is epoch milliseconds
-- as a decimal string: scripts need the arithmetic (duration_ms) and Redis' Lua has
-- no os.date; the HTTP API and the PostgreSQL sync format them as ISO-8601.
-- Every change of a job hash also adds the job id to the dirty set (section 5).

local call, encode = redis.call, cjson.encode
local floor, min, concat, format, unpack = math.floor, math.min, table.concat, string.format, unpack

local K_STREAM, K_RETRY, K_DEAD, K_EVENTS, K_DIRTY = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local NOW = tonumber(ARGV[1])
local EVENTS_MAXLEN, STATUS_TTL = ARGV[2], ARGV[3]
if not (K_DIRTY and NOW and tonumber(EVENTS_MAXLEN) and tonumber(STATUS_TTL)) then
  error('bad arguments: 5 keys, then now, events maxlen, status ttl expected')
end

-- Event payloads: the fields of each kind, in the order they appear in `data`.
-- Times are epoch ms; counts are integers; error is a string.
local EVENT_FIELDS = {
  -- enqueue.lua: a job and all its chunks are on the stream.
  ['ingestion.queued'] = { 'job_id', 'job_type', 'chunks_total' },
  -- begin.lua: a worker took the job's first chunk (queued -> processing).
  ['ingestion.started'] = { 'job_id', 'started_at' },
  -- settle/begin/reclaim: once per job per call, carrying the counts after it;
  -- percent_complete = 100 * (processed + failed + skipped) / total, 2 decimals.
  ['ingestion.progress'] = { 'job_id', 'chunks_processed', 'chunks_failed', 'chunks_skipped',
                             'chunks_total', 'percent_complete' },
  -- Every chunk succeeded; duration_ms runs from started_at (created_at if none).
  ['ingestion.completed'] = { 'job_id', 'status', 'chunks_processed', 'chunks_total',
                              'duration_ms', 'completed_at' },
  -- Every chunk is final and at least one was dead-lettered; error is the first.
  ['ingestion.failed'] = { 'job_id', 'status', 'chunks_processed', 'chunks_failed',
                           'chunks_total', 'error', 'duration_ms', 'completed_at' },
  -- cancel.lua: the counts at the moment of cancelling.
  ['ingestion.cancelled'] = { 'job_id', 'chunks_processed', 'chunks_failed', 'chunks_skipped',
                              'chunks_total' },
  -- settle.lua: the chunk goes back on the stream at due_at as attempt `attempt`.
  ['chunk.retry'] = { 'job_id', 'chunk_id', 'attempt', 'due_at', 'error' },
  -- settle/begin/reclaim: the chunk is in the dead-letter stream.
  ['chunk.dead'] = { 'job_id', 'chunk_id', 'attempts', 'error' },
}

local function json_value(v)
  local t = type(v)
  if t == 'number' then
    -- Redis and cjson print doubles with 17 digits (33.329999999999998).
    if v == floor(v) then return format('%d', v) end
    return tostring(v)
  end
  if t == 'nil' then return 'null' end
  return encode(v)
end

-- The JSON `data` of an event: the fields of its kind, in EVENT_FIELDS order.
local function payload(kind, fields)
  local names = EVENT_FIELDS[kind]
  local parts = {}
  for i = 1, #names do
    parts[i] = '"' .. names[i] .. '":' .. json_value(fields[names[i]])
  end
  return '{' .. concat(parts, ',') .. '}'
end

local function emit(kind, job_id, fields)
  call('XADD', K_EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*',
       'type', kind, 'job_id', job_id, 'data', payload(kind, fields))
end

-- The fields of task entry id as a flat {name, value, ...} array; nil once deleted.
-- With group: nil also once the entry is no longer pending in group (settled or
-- reclaimed before): an acknowledged entry may stay readable until the trim of
-- trim_acked passes it, so only the PEL says whether an outcome is still due.
local function entry_fields(id, group)
  if group and not call('XPENDING', K_STREAM, group, id, id, 1)[1] then return nil end
  local r = call('XRANGE', K_STREAM, id, id)
  if r[1] then return r[1][2] end
end

local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
end

-- The job of a task entry: its job_id field, or else (enqueue.lua writes none)
-- its chunk_id up to the last ':'; '' when it has neither.
local function entry_job(flat)
  return field(flat, 'job_id') or (field(flat, 'chunk_id') or ''):match('^(.*):') or ''
end

-- cmd key [first] list[from..to]...: the sum of the integer replies. unpack()
-- is capped by Lua's C stack (8000 values), so long lists go in slices. first:
-- an argument before the list (XACK's group), or nil; from, to: the whole list
-- when nil (a list may be ARGV itself, read in place).
local function call_many(cmd, key, list, first, from, to)
  local n = 0
  to = to or #list
  for i = from or 1, to, 1000 do
    if first then
      n = n + call(cmd, key, first, unpack(list, i, min(i + 999, to)))
    else
      n = n + call(cmd, key, unpack(list, i, min(i + 999, to)))
    end
  end
  return n
end

-- Stream ids "<ms>-<seq>" compared as two unsigned 64-bit decimals (Redis writes
-- them without leading zeros; Lua's doubles are exact only to 2^53).
local U64_MAX = '18446744073709551615'

local function dec_less(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end

local function id_less(a, b)
  local am, as = a:match('^(%d+)-(%d+)$')
  local bm, bs = b:match('^(%d+)-(%d+)$')
  if am ~= bm then return dec_less(am, bm) end
  return dec_less(as, bs)
end

local function dec_incr(s)
  local i = #s
  while i > 0 and s:byte(i) == 57 do i = i - 1 end -- trailing '9's
  if i == 0 then return '1' .. ('0'):rep(#s) end
  return s:sub(1, i - 1) .. string.char(s:byte(i) + 1) .. ('0'):rep(#s - i)
end

-- The smallest id after id; nil after the largest possible one.
local function id_after(id)
  local ms, seq = id:match('^(%d+)-(%d+)$')
  if seq ~= U64_MAX then return ms .. '-' .. dec_incr(seq) end
  if ms ~= U64_MAX then return dec_incr(ms) .. '-0' end
end

-- Acknowledged entries the trim may keep behind an older pending one before
-- trim_acked deletes each acknowledged entry instead (see there).
local ACKED_HELD_MAX = 10000

-- Removes acknowledged task entries; called by each script that acknowledges
-- (settle, begin, reclaim), after its XACK of ids[from..to] (the whole list
-- when nil). DESIGN section 4.
-- Per-entry XDEL walks the entry's stream node (up to 100 entries) from its
-- start, over the entries deleted before: it was ~16-19% of Redis' work in a
-- drain. Instead the stream is trimmed from the front (XTRIM MINID, exact, so
-- a drained stream has XLEN 0), which frees whole nodes and walks one node per
-- call. MINID is the smallest, over the stream's consumer groups, of the
-- group's oldest pending id (invariant 1: a pending entry's fields stay
-- readable until it is acknowledged) and the id right after its
-- last-delivered-id (an entry not yet delivered to some group stays). No
-- group: nothing is trimmed.
-- In-order trimming lets one long-pending entry (a chunk running for minutes,
-- a dead consumer's entry awaiting reclaim) keep every acknowledged entry after
-- it. To bound that, the acknowledged entries left after the trim are counted:
-- XLEN minus, for the group that needs most, its lag (entries not yet
-- delivered) and its pending count. Redis 7.0 keeps lag exact while only
-- delivered entries are deleted, except when a group's last-delivered entry
-- itself is deleted, so that one is never XDELed here. Over ACKED_HELD_MAX,
-- or when a lag is unknown, the ids of this call are deleted one by one (the
-- cost of before) and memory stops growing; once the old entry is settled the
-- next trim removes the rest. With several groups, only ids that every group
-- has received and none has pending are deleted.
local function trim_acked(ids, from, to)
  from, to = from or 1, to or #ids
  if to < from then return end
  local len = call('XLEN', K_STREAM)
  if len == 0 then return end
  local groups = call('XINFO', 'GROUPS', K_STREAM)
  if #groups == 0 then return end
  local minid, need, lag_known, lasts, names = nil, 0, true, {}, {}
  for g = 1, #groups do
    local info, f = groups[g], {}
    for k = 1, #info, 2 do f[info[k]] = info[k + 1] end
    local last, pending, lag = f['last-delivered-id'], f.pending, f.lag
    names[g], lasts[g] = f.name, last
    local limit = id_after(last)
    if pending > 0 then
      local oldest = call('XPENDING', K_STREAM, f.name, '-', '+', 1)[1]
      if oldest and (not limit or id_less(oldest[1], limit)) then limit = oldest[1] end
    end
    if limit and (not minid or id_less(limit, minid)) then minid = limit end
    if type(lag) == 'number' then
      if lag + pending > need then need = lag + pending end
    else
      lag_known = false
    end
  end
  if minid then len = len - call('XTRIM', K_STREAM, 'MINID', minid) end
  if len - need <= ACKED_HELD_MAX and lag_known and minid then return end
  local del = {}
  for i = from, to do
    local id = ids[i]
    local keep = minid and id_less(id, minid) -- trimmed already
    for g = 1, #names do
      if keep then break end
      keep = id == lasts[g]
        or (#names > 1 and (id_less(lasts[g], id)
                            or call('XPENDING', K_STREAM, names[g], id, id, 1)[1] ~= nil))
    end
    if not keep then del[#del + 1] = id end
  end
  call_many('XDEL', K_STREAM, del)
end

-- Jobs touched by this call, loaded once; their changes are written by flush_jobs.
local jobs, touched = {}, {}

-- The job's state, or false when its hash does not exist (never created, or
-- expired after reaching a final state).
local function job(id)
  local j = jobs[id]
  if j == nil then
    local key = 'job:' .. id
    local h = call('HMGET', key, 'status', 'chunks_total', 'chunks_processed', 'chunks_failed',
                   'chunks_skipped', 'created_at', 'started_at', 'error_message', 'rev')
    j = false
    if h[1] then
      j = { id = id, key = key, done = key .. ':done', status = h[1],
            total = tonumber(h[2]) or 0, processed = tonumber(h[3]) or 0,
            failed = tonumber(h[4]) or 0, skipped = tonumber(h[5]) or 0,
            created_at = tonumber(h[6]), started_at = tonumber(h[7]),
            error = h[8] or nil, rev = tonumber(h[9]) or 0, set = {} }
    end
    jobs[id] = j
  end
  return j
end

local function touch(j)
  if not j.touched then
    j.touched = true
    touched[#touched + 1] = j
  end
end

local function job_set(j, name, value)
  local s = j.set
  s[#s + 1] = name
  s[#s + 1] = value
  touch(j)
end

local FINAL = { completed = true, failed = true, cancelled = true }

-- Marks chunk ids (chunk_ids[from..to], the whole list when nil) final in the
-- job's done set; those not yet there count once in counter ('processed',
-- 'failed' or 'skipped'): invariant 2, the done set decides. Returns how many
-- counted.
local function count_final(j, chunk_ids, counter, from, to)
  local added = call_many('SADD', j.done, chunk_ids, nil, from, to)
  if added > 0 then
    j[counter] = j[counter] + added
    j.counted = true
    if counter ~= 'skipped' then j.progressed = true end
    touch(j)
  end
  return added
end

-- Dead-letters a chunk: D gets the entry's original fields (flat, or job_id and
-- chunk_id when the entry is gone; job_id first when the entry had none) plus
-- error, attempts and failed_at. A chunk of
-- a known job counts as failed once, keeps the job's first error and emits
-- chunk.dead; a chunk already final, or of a job that no longer exists, is not
-- dead-lettered again. A malformed entry (empty job_id) is dead-lettered with no
-- job accounting, unless its entry is gone (dead-lettered before). Returns true
-- when a dead entry was written.
local function bury(flat, job_id, chunk_id, err, attempts)
  if job_id == '' then
    if not flat then return false end
  else
    local j = job(job_id)
    if not j or count_final(j, { chunk_id }, 'failed') == 0 then return false end
    if not j.error then
      j.error = err
      job_set(j, 'error_message', err)
    end
    emit('chunk.dead', job_id, { job_id = job_id, chunk_id = chunk_id,
                                 attempts = tonumber(attempts), error = err })
  end
  local out = {}
  if flat then
    if job_id ~= '' and not field(flat, 'job_id') then out[1], out[2] = 'job_id', job_id end
    for i = 1, #flat do out[#out + 1] = flat[i] end
  else
    out = { 'job_id', job_id, 'chunk_id', chunk_id }
  end
  local n = #out
  out[n + 1], out[n + 2] = 'error', err
  out[n + 3], out[n + 4] = 'attempts', attempts
  out[n + 5], out[n + 6] = 'failed_at', format('%d', NOW)
  call('XADD', K_DEAD, '*', unpack(out))
  return true
end

-- The deliveries of a pending entry without an outcome: its delivery count plus
-- the `deliveries` it carried from earlier reclaims. Over max_deliveries, begin
-- and reclaim dead-letter it (DESIGN section 10: a crash-looping worker's own
-- id-0 reads keep a poison entry from ever looking idle).
local function over_delivered(flat, count, max_deliveries)
  local carried = field(flat, 'deliveries')
  local total = count + (carried and tonumber(carried) or 0)
  return total > max_deliveries, total
end

local function delivery_error(n)
  return 'delivered ' .. n .. ' times without an outcome (crashed or stalled worker)'
end

-- A job reaching a final state: completed (no dead chunk) or failed; a cancelled
-- job stays cancelled. Returns true when it did.
local function finalize(j)
  if j.status == 'completed' or j.status == 'failed'
     or j.processed + j.failed + j.skipped < j.total then
    return false
  end
  if j.status ~= 'cancelled' then
    j.status = j.failed > 0 and 'failed' or 'completed'
    job_set(j, 'status', j.status)
    emit('ingestion.' .. j.status, j.id, {
      job_id = j.id, status = j.status, chunks_processed = j.processed,
      chunks_failed = j.failed, chunks_total = j.total, error = j.error,
      duration_ms = NOW - (j.started_at or j.created_at or NOW), completed_at = NOW })
  end
  job_set(j, 'completed_at', format('%d', NOW))
  return true
end

-- Writes every touched job: one HSET (counters, changed fields, rev + 1), the
-- dirty mark, one coalesced progress event, and on reaching a final state the
-- final event. The TTLs are set by clean.lua once PostgreSQL holds the final
-- state, so an outage longer than the TTL cannot lose a job's audit trail.
local function flush_jobs()
  for i = 1, #touched do
    local j = touched[i]
    if j.counted then
      if j.progressed then
        local total = j.total > 0 and j.total or 1
        emit('ingestion.progress', j.id, {
          job_id = j.id, chunks_processed = j.processed, chunks_failed = j.failed,
          chunks_skipped = j.skipped, chunks_total = j.total,
          percent_complete = floor((j.processed + j.failed + j.skipped) * 10000 / total) / 100 })
      end
      finalize(j)
      job_set(j, 'chunks_processed', j.processed)
      job_set(j, 'chunks_failed', j.failed)
      job_set(j, 'chunks_skipped', j.skipped)
    end
    job_set(j, 'rev', j.rev + 1)
    call('HSET', j.key, unpack(j.set))
    call('SADD', K_DIRTY, j.id)
  end
end
