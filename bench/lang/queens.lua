-- queens.lua: counts the 92 solutions of 8-queens, 700 times. The queens
-- placed so far are a cons list ({head, tail} pairs, nil for the empty
-- list) of columns, nearest row first, as in the SX version. Runs on Lua
-- 5.4 and LuaJIT. Prints 64400.
local function safe(col, dist, placed)
  while placed do
    local q = placed[1]
    if q == col or q == col + dist or q == col - dist then return false end
    dist = dist + 1
    placed = placed[2]
  end
  return true
end

local function count_from(row, placed, size)
  if row == size then return 1 end
  local acc = 0
  for col = 0, size - 1 do
    if safe(col, 1, placed) then
      acc = acc + count_from(row + 1, {col, placed}, size)
    end
  end
  return acc
end

local sum = 0
for _ = 1, 700 do sum = sum + count_from(0, nil, 8) end
print(sum)
