-- tak.lua: Takeuchi's function, tak(18, 12, 6) computed 600 times. Runs
-- on Lua 5.4 and LuaJIT. Prints the sum of the results, 4200.
local function tak(x, y, z)
  if not (y < x) then return z end
  return tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y))
end

local sum = 0
for _ = 1, 600 do sum = sum + tak(18, 12, 6) end
print(sum)
