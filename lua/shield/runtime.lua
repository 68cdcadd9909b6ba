-- The runtime's own Lua side of a worker: starting the processing script and
-- running one task through it. Called from C (runtime/script.c, runtime/worker.c)
-- inside light threads; relies on the shield module.
local shield = require "shield"

local _M = {}

-- Runs module.init(config.lightrag) when the script has one.
function _M.init_script(module)
  if module.init then
    module.init(shield.config().lightrag)
  end
  return true
end

return _M
