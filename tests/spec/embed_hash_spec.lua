local embed = require "shield.lightrag.embed_hash"

local function norm(v)
  local s = 0
  for i = 1, #v do s = s + v[i] * v[i] end
  return math.sqrt(s)
end

describe("embed_hash.fnv1a", function()
  it("matches the published 32-bit FNV-1a test vectors", function()
    assert.equal(0x811C9DC5, embed.fnv1a(""))
    assert.equal(0xE40C292C, embed.fnv1a("a"))
    assert.equal(0xBF9CF968, embed.fnv1a("foobar"))
  end)
end)

describe("embed_hash.embed", function()
  it("returns a unit vector of the default dimension", function()
    local v = assert(embed.embed("Marie Curie discovered polonium and radium."))
    assert.equal(256, #v)
    assert.near(1, norm(v), 1e-12)
  end)

  it("honours a configured dimension", function()
    local v = assert(embed.embed("Marie Curie", { dim = 64 }))
    assert.equal(64, #v)
    assert.near(1, norm(v), 1e-12)
  end)

  it("is deterministic, across calls and across releases", function()
    assert.same(embed.embed("Radium glows"), embed.embed("Radium glows"))
    -- pinned: changing the hashing invalidates every stored vector
    local expected = { -0.519981943152, -0.444824733756, 0.232542994392, -0.232542994392,
                       -0.519981943152, 0.232542994392, 0.212281739364, -0.232542994392 }
    local v = embed.embed("Radium glows", { dim = 8 })
    for i = 1, 8 do assert.near(expected[i], v[i], 1e-9) end
  end)

  it("ignores case (ASCII and Latin-1) and punctuation", function()
    assert.same(embed.embed("école normale"), embed.embed("ÉCOLE, Normale!"))
    assert.same(embed.embed("Marie Curie"), embed.embed("“marie” — CURIE"))
  end)

  it("places similar texts closer than unrelated ones", function()
    local a = embed.embed("Marie Curie studied radioactivity at the University of Paris.")
    local b = embed.embed("At the University of Paris, Marie Curie researched radioactive elements.")
    local c = embed.embed("The central bank raised interest rates to fight inflation in March.")
    local ab, ac, bc = embed.cosine(a, b), embed.cosine(a, c), embed.cosine(b, c)
    assert.is_true(ab > 0.5, "similar texts: " .. ab)
    assert.is_true(ab > ac + 0.4, "a-b " .. ab .. " vs a-c " .. ac)
    assert.is_true(ab > bc + 0.4, "a-b " .. ab .. " vs b-c " .. bc)
    assert.near(1, embed.cosine(a, a), 1e-12)
  end)

  it("relates word forms through character trigrams", function()
    local a = embed.embed("radioactivity")
    local b = embed.embed("radioactive")
    local c = embed.embed("banking")
    assert.is_true(embed.cosine(a, b) > embed.cosine(a, c) + 0.2)
  end)

  it("refuses text without words", function()
    assert.same({ nil, "empty text" }, { embed.embed("") })
    assert.same({ nil, "empty text" }, { embed.embed("  ... —— !? \194\160") })
  end)

  it("raises on misuse", function()
    assert.has_error(function() embed.embed(42) end,
      "bad argument #1 to 'embed': string expected, got number")
    assert.has_error(function() embed.embed("x", { dim = 0 }) end,
      "bad option 'dim' to 'embed': positive integer expected")
    assert.has_error(function() embed.embed("x", { dim = 1.5 }) end,
      "bad option 'dim' to 'embed': positive integer expected")
    assert.has_error(function() embed.cosine({ 1 }, { 1, 2 }) end,
      "bad arguments to 'cosine': two non-empty vectors of the same length expected")
  end)
end)
