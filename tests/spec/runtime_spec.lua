-- The specs run under LuaJIT (not Debian's default Lua 5.2), and the library
-- modules load without touching globals.

describe("the Lua runtime of the specs", function()
  it("is LuaJIT", function()
    assert.is_table(jit)
    assert.is_truthy(jit.version:find("^LuaJIT 2%."))
  end)

  it("has the bit library the hashing embedder needs", function()
    local bit = require "bit"
    assert.equal(-1, bit.tobit(0xFFFFFFFF))
    assert.equal(0x12, bit.bxor(0x10, 0x02))
  end)
end)

describe("library modules", function()
  local modules = {
    "shield.retry",
    "shield.counts",
    "shield.lightrag.text",
    "shield.lightrag.prompt",
    "shield.lightrag.parser",
    "shield.lightrag.merge",
    "shield.lightrag.offline",
    "shield.lightrag.embed_hash",
    "shield.lightrag.steps",
  }

  for _, name in ipairs(modules) do
    it(name .. " loads as a table and sets no globals", function()
      package.loaded[name] = nil
      local before = {}
      for k in pairs(_G) do before[k] = true end
      local m = require(name)
      assert.is_table(m)
      local added = {}
      for k in pairs(_G) do
        if not before[k] then added[#added + 1] = tostring(k) end
      end
      assert.same({}, added)
    end)
  end
end)
