-- primes.lua: the primes up to 1000 by a sieve over lists, 1000 times, for
-- Lua 5.4 and LuaJIT: the list 2..1000 ({head, tail} pairs, nil for the
-- empty list) is built, then each head's multiples are removed from what
-- follows it, non-tail recursively, as in the SX version. Prints the
-- number of primes found summed over the runs, 168000.
local function interval_list(m, n)
  if m > n then return nil end
  return {m, interval_list(m + 1, n)}
end

local function remove_multiples(n, l)
  if l == nil then return nil end
  if l[1] % n == 0 then return remove_multiples(n, l[2]) end
  return {l[1], remove_multiples(n, l[2])}
end

local function sieve(l)
  if l == nil then return nil end
  return {l[1], sieve(remove_multiples(l[1], l[2]))}
end

local function length(l)
  local k = 0
  while l do k = k + 1; l = l[2] end
  return k
end

local acc = 0
for _ = 1, 1000 do
  acc = acc + length(sieve(interval_list(2, 1000)))
end
print(acc)
