-- clean.lua: the PostgreSQL sync marks the jobs it wrote as clean.
-- KEYS: S, R, D, E, dirty (common.lua); only dirty is used.
-- ARGV[1..3] now (ms), events maxlen, status ttl (common.lua; unused here)
-- ARGV[4..] pairs: job id, the rev the sync read it at
-- A job leaves the dirty set only if its rev is unchanged since that read (a
-- change during the sync keeps it dirty for the next pass), or if its hash no
-- longer exists (expired: nothing is left to sync). A job cleaned in a final
-- state (completed, failed, or cancelled with every chunk final) gets its TTL
-- here: its hash and done set expire status_ttl seconds after PostgreSQL has
-- it, never before it reached that state. Returns how many were removed.

local n = (#ARGV - 3) / 2
if n ~= floor(n) then
  return redis.error_reply('bad arguments: pairs of job id and rev expected')
end

local clean = {}
for i = 4, #ARGV, 2 do
  local key = 'job:' .. ARGV[i]
  local h = call('HMGET', key, 'rev', 'completed_at')
  if not h[1] or h[1] == ARGV[i + 1] then
    clean[#clean + 1] = ARGV[i]
    -- completed_at is set exactly when the job reached its final state.
    if h[2] then
      call('EXPIRE', key, STATUS_TTL)
      call('EXPIRE', key .. ':done', STATUS_TTL)
    end
  end
end
if #clean == 0 then return 0 end
return call_many('SREM', K_DIRTY, clean)
