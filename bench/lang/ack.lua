-- ack.lua: Ackermann's function, ack(3, 9) computed 10 times, for Lua 5.4
-- and LuaJIT. Prints the sum of the results, 40930.
local function ack(m, n)
  if m == 0 then
    return n + 1
  elseif n == 0 then
    return ack(m - 1, 1)
  else
    return ack(m - 1, ack(m, n - 1))
  end
end

local acc = 0
for _ = 1, 10 do
  acc = acc + ack(3, 9)
end
print(acc)
