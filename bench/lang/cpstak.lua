-- cpstak.lua: Takeuchi's function in continuation-passing style,
-- cpstak(18, 12, 6) computed 100 times, for Lua 5.4 and LuaJIT: each call
-- builds a fresh closure as its continuation; continuations are called in
-- tail position. Prints 700.
local function cpstak(x, y, z)
  local tak
  tak = function(x, y, z, k)
    if not (y < x) then
      return k(z)
    end
    return tak(x - 1, y, z, function(v1)
      return tak(y - 1, z, x, function(v2)
        return tak(z - 1, x, y, function(v3)
          return tak(v1, v2, v3, k)
        end)
      end)
    end)
  end
  return tak(x, y, z, function(a) return a end)
end

local acc = 0
for _ = 1, 100 do
  acc = acc + cpstak(18, 12, 6)
end
print(acc)
