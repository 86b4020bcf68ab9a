-- fib.lua: doubly recursive Fibonacci, fib(30). Runs on Lua 5.4 and
-- LuaJIT. Prints 832040.
local function fib(n)
  if n < 2 then return n end
  return fib(n - 1) + fib(n - 2)
end

print(fib(30))
