-- closure.lua: transitive closure of a 300-node graph by naive Datalog
-- saturation, computed 20 times from scratch; the same algorithm as
-- closure.sx with a table per node as the set of reachable nodes. Keys are
-- copied out before a node's set is extended, since Lua does not allow
-- adding keys while traversing a table. Runs on Lua 5.4 and LuaJIT.
-- Prints 1800000.
local n = 300
local succ = {}
for i = 0, n - 1 do succ[i] = {(i * 7 + 1) % n, (i * 13 + 5) % n} end

local function extend(d)
  local ys, m = {}, 0
  for y in pairs(d) do m = m + 1; ys[m] = y end
  local changed = false
  for k = 1, m do
    local s = succ[ys[k]]
    for j = 1, 2 do
      local z = s[j]
      if not d[z] then d[z] = true; changed = true end
    end
  end
  return changed
end

local function closure()
  local reach = {}
  for i = 0, n - 1 do
    local d = {}
    d[succ[i][1]] = true
    d[succ[i][2]] = true
    reach[i] = d
  end
  local changed = true
  while changed do
    changed = false
    for x = 0, n - 1 do
      if extend(reach[x]) then changed = true end
    end
  end
  local total = 0
  for x = 0, n - 1 do
    for _ in pairs(reach[x]) do total = total + 1 end
  end
  return total
end

local sum = 0
for _ = 1, 20 do sum = sum + closure() end
print(sum)
