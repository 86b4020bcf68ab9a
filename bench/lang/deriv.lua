-- deriv.lua: symbolic differentiation of (+ (* 3 x x) (* a x x) (* b x) 5)
-- with respect to x, 200000 times, for Lua 5.4 and LuaJIT. Expressions are
-- cons lists ({head, tail} pairs, nil for the empty list) of strings (the
-- symbols) and numbers, as in the SX version. Prints the number of atoms
-- of the derivative summed over the runs, 8600000.
local function list(...)
  local t = nil
  local args = {...}
  for i = select("#", ...), 1, -1 do t = {args[i], t} end
  return t
end

local function map(f, l)
  if l == nil then return nil end
  return {f(l[1]), map(f, l[2])}
end

local deriv

local function quotient_term(a)
  return list("/", deriv(a), a)
end

deriv = function(a)
  if type(a) ~= "table" then
    if a == "x" then return 1 else return 0 end
  end
  local op = a[1]
  if op == "+" then
    return {"+", map(deriv, a[2])}
  elseif op == "-" then
    return {"-", map(deriv, a[2])}
  elseif op == "*" then
    return list("*", a, {"+", map(quotient_term, a[2])})
  else -- "/"
    local num, den = a[2][1], a[2][2][1]
    return list("-", list("/", deriv(num), den),
                list("/", num, list("*", den, den, deriv(den))))
  end
end

local function atoms(t)
  if type(t) == "table" then return atoms(t[1]) + atoms(t[2]) end
  if t == nil then return 0 end
  return 1
end

local expr = list("+", list("*", 3, "x", "x"), list("*", "a", "x", "x"), list("*", "b", "x"), 5)

local acc = 0
for _ = 1, 200000 do
  acc = acc + atoms(deriv(expr))
end
print(acc)
