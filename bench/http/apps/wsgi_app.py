"""bench/http's application for gunicorn (a WSGI callable, `app`).

Same paths and bytes as apps/sxpool/main.sx; the store is a dict that each
worker fills when it imports this module.
"""

STORE = {"k%03d" % i: "v%d" % (i * i) for i in range(500)}
ROW_KEYS = ["k%03d" % (i * 10) for i in range(50)]


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def rows():
    parts = ["<!doctype html>\n<html><head><title>rows</title></head><body>\n<table>\n"]
    for k in ROW_KEYS:
        parts.append("<tr><td>%s</td><td>%s</td></tr>\n" % (k, STORE[k]))
    parts.append("</table>\n</body></html>\n")
    return "".join(parts)


def query_param(environ, name):
    for item in environ.get("QUERY_STRING", "").split("&"):
        key, _, value = item.partition("=")
        if key == name:
            return value
    return None


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    status, ctype = "200 OK", "text/plain"
    if path == "/":
        body = "hello\n"
    elif path == "/fib":
        body = "%d\n" % fib(int(query_param(environ, "n") or "0"))
    elif path == "/rows":
        body, ctype = rows(), "text/html"
    elif path == "/setup":
        body = "ok\n"
    else:
        status, body = "404 Not Found", "not found\n"
    data = body.encode()
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(data)))])
    return [data]
