local text = require "shield.lightrag.text"

local NBSP, IDEO, ZWSP, NNBSP = "\194\160", "\227\128\128", "\226\128\139", "\226\128\175"

describe("text.trim", function()
  it("removes ASCII and Unicode spaces at both ends", function()
    assert.equal("Zoë", text.trim(" \t" .. NBSP .. "Zoë" .. IDEO .. NNBSP .. "\r\n"))
  end)

  it("never cuts into a multibyte character ending in 0xA0", function()
    -- "à" is C3 A0: a byte-wise strip of 0xA0 would leave a broken C3
    assert.equal("Jean Voilà", text.trim("Jean Voilà "))
    assert.equal("Voilà", text.trim(NBSP .. "Voilà"))
  end)

  it("keeps inner spaces and returns empty for blank input", function()
    assert.equal("a  b", text.trim("  a  b  "))
    assert.equal("", text.trim(NBSP .. " " .. IDEO))
  end)
end)

describe("text.strip_quotes", function()
  it("strips ASCII, typographic and CJK quotes with the spaces around them", function()
    assert.equal("Marie Curie", text.strip_quotes(' "Marie Curie" '))
    assert.equal("Marie Curie", text.strip_quotes("“Marie Curie”"))
    assert.equal("Paris", text.strip_quotes("«Paris»"))
    assert.equal("東京", text.strip_quotes("「東京」"))
    assert.equal("O'Brien", text.strip_quotes("'O'Brien'"))
  end)
end)

describe("text.unquote", function()
  it("strips one balanced pair of double quotes only", function()
    assert.equal('He said "hi"', text.unquote('"He said "hi""'))
    assert.equal('"half', text.unquote('"half'))
  end)
end)

describe("text.squeeze", function()
  it("collapses whitespace runs and drops zero-width characters", function()
    assert.equal("Ada Lovelace", text.squeeze("Ada" .. NBSP .. " \n\tLove" .. ZWSP .. "lace"))
  end)
end)

describe("text.split", function()
  it("splits on a plain separator and keeps empty fields", function()
    assert.same({ "a", "", "b.c" }, text.split("a<|><|>b.c", "<|>"))
    assert.same({ "a", "  ", "b.c" }, text.split("a<|>  <|>b.c", "<|>"))
    assert.same({ "", "" }, text.split("%", "%"))
  end)
end)

describe("text.truncate", function()
  it("cuts at a character boundary", function()
    assert.equal("Zo", text.truncate("Zoë", 3))   -- ë is two bytes: a cut after 3 would split it
    assert.equal("Zoë", text.truncate("Zoë", 4))
    assert.equal("東", text.truncate("東京", 5))
    assert.equal("", text.truncate("東京", 2))
  end)
end)

describe("text.lower_ascii", function()
  it("lowercases A-Z and leaves other bytes alone", function()
    assert.equal("\195\137cole paris", text.lower_ascii("\195\137cole PARIS"))
    assert.equal("\195\137cole", text.lower_ascii("\195\137COLE"))
  end)
end)
