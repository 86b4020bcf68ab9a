-- bench/http's application for nginx's Lua module (loaded by nginx.conf).
-- Same paths and bytes as apps/sxpool/main.sx; the store is the shared
-- dict `store` (lua_shared_dict), filled once by the master in init().
local M = {}

local function key_name(i)
    return string.format("k%03d", i)
end

function M.init()
    local store = ngx.shared.store
    for i = 0, 499 do
        store:set(key_name(i), "v" .. (i * i))
    end
end

local function fib(n)
    if n < 2 then return n end
    return fib(n - 1) + fib(n - 2)
end

local row_keys = {}
for i = 0, 49 do row_keys[#row_keys + 1] = key_name(i * 10) end

function M.hello()
    ngx.header.content_type = "text/plain"
    ngx.print("hello\n")
end

function M.fib()
    ngx.header.content_type = "text/plain"
    ngx.print(fib(tonumber(ngx.var.arg_n) or 0), "\n")
end

function M.rows()
    local store = ngx.shared.store
    local parts = { "<!doctype html>\n<html><head><title>rows</title></head><body>\n<table>\n" }
    for _, k in ipairs(row_keys) do
        parts[#parts + 1] = "<tr><td>" .. k .. "</td><td>" .. store:get(k) .. "</td></tr>\n"
    end
    parts[#parts + 1] = "</table>\n</body></html>\n"
    ngx.header.content_type = "text/html"
    ngx.print(table.concat(parts))
end

function M.setup()
    ngx.header.content_type = "text/plain"
    ngx.print("ok\n")
end

return M
