"""The bundled blog (examples/blog), served as a user gets it.

- Every page: status, content type and the content that shows it works
  (the seed data, pagination, a post with its tags, the tag hierarchy with
  counts, posts reachable through the hierarchy, the JSON API).
- The form: a POST with bad fields is a 400 whose page names each problem
  and writes nothing; a good one is a 303 to the new post.
- A hostile title and body come back escaped on every page that shows them.
- Every HTML page parses as HTML5 without a single parse error (html5lib,
  strict).
- The same bytes from a CEK worker and a JIT worker for every page, the
  JIT worker's after its hot functions run native code.
"""

import json
import os
import re
import sys
import urllib.parse

import sxtest

BLOG = os.path.normpath(os.path.join(sxtest.HERE, "..", "..", "examples", "blog"))

HOSTILE_TITLE = "<script>alert(\"t\")</script> & 'q' </title>"
HOSTILE_BODY = "<img src=x onerror=alert(1)>\n\nsecond & \"para\""

# every page of the seeded blog, HTML and JSON
PAGES = ["/", "/?page=2", "/?page=15", "/?page=99", "/posts/new", "/tags", "/tags/programming",
         "/tags/datalog", "/tags/bread", "/tags/coffee", "/api/posts", "/api/posts?page=3",
         "/api/tags/logic", "/api/tags/web", "/nope", "/tags/nope", "/api/posts/nope",
         "/?page=abc"]


def form(**fields):
    return urllib.parse.urlencode(fields).encode()


def post_form(srv, body):
    return srv.request("POST", "/posts", body=body,
                       headers={"content-type": "application/x-www-form-urlencoded"})


def valid_html5(test, text, what):
    try:
        import html5lib
    except ImportError:
        # deploy/install-deps.sh installs it for Debian's python3, the one
        # tests/run-all.sh runs: a missing tool fails, never skips
        test.fail("python3-html5lib is not installed for %s (deploy/install-deps.sh)"
                  % sys.executable)
    parser = html5lib.HTMLParser(strict=True)
    try:
        parser.parse(text)
    except html5lib.html5parser.ParseError as e:
        test.fail("%s is not valid HTML5: %s %s" % (what, e, parser.errors[:3]))


def api(srv, path):
    r = srv.get(path)
    assert r.status == 200, r
    return json.loads(r.text)


class Blog(sxtest.unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = sxtest.Server(app=BLOG, workers=1, cek_workers=1).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def page(self, path, status=200, ctype="text/html; charset=utf-8"):
        r = self.srv.get(path)
        self.assertEqual(r.status, status, (path, r))
        self.assertEqual(r.headers.get("content-type"), ctype, path)
        if ctype.startswith("text/html"):
            self.assertTrue(r.text.startswith("<!doctype html>\n<html lang=\"en\">"), path)
            self.assertTrue(r.text.endswith("</body></html>\n"), path)
            valid_html5(self, r.text, path)
        return r.text

    def test_home_lists_posts_newest_first_with_pages(self):
        html = self.page("/")
        self.assertIn("<h1>Posts</h1>", html)
        self.assertRegex(html, r"\d+ posts · page 1 of \d+")
        self.assertIn('href="/?page=2">Older', html)
        self.assertNotIn("Newer", html)
        first = api(self.srv, "/api/posts")
        self.assertEqual(first["page"], 1)
        self.assertEqual(first["per_page"], 20)
        self.assertGreaterEqual(first["total"], 300)
        self.assertEqual(len(first["posts"]), 20)
        dates = [p["date"] for p in first["posts"]]
        self.assertEqual(dates, sorted(dates, reverse=True))
        for p in first["posts"]:
            self.assertIn('href="/posts/%s"' % p["slug"], html)
        second = api(self.srv, "/api/posts?page=2")
        self.assertFalse({p["slug"] for p in first["posts"]} & {p["slug"] for p in second["posts"]})
        self.assertIn("No posts on this page.", self.page("/?page=99"))
        self.assertIn("positive integer", self.page("/?page=0", status=400))
        self.assertIn("positive integer", self.page("/?page=1.5", status=400))
        r = self.srv.get("/api/posts?page=-1")
        self.assertEqual(r.status, 400, r)

    def test_post_page_shows_the_post_and_its_tags(self):
        p = api(self.srv, "/api/posts?page=5")["posts"][3]
        html = self.page("/posts/" + p["slug"])
        self.assertIn("<h1>%s</h1>" % p["title"], html)
        for t in p["tags"]:
            self.assertIn('<a class="tag" href="/tags/%s">%s</a>' % (t, t), html)
        full = api(self.srv, "/api/posts/" + p["slug"])
        self.assertEqual((full["slug"], full["title"], full["tags"]), (p["slug"], p["title"], p["tags"]))
        for para in full["body"].split("\n\n"):
            self.assertIn("<p>%s</p>" % para, html)
        self.assertIn("There is no post", self.page("/posts/no-such-post", status=404))
        r = self.srv.get("/api/posts/no-such-post")
        self.assertEqual((r.status, json.loads(r.text)), (404, {"error": "no such post"}))

    def test_tag_pages_follow_the_hierarchy(self):
        # datalog sits under logic (tree) and under databases (a cross link);
        # logic is also under programming (a cross link)
        logic = api(self.srv, "/api/tags/logic")
        self.assertEqual(logic["under"], ["datalog"])
        datalog = api(self.srv, "/api/tags/datalog")
        self.assertEqual(datalog["under"], [])
        databases = api(self.srv, "/api/tags/databases")
        self.assertEqual(databases["under"], ["datalog", "lmdb", "sqlite"])
        programming = api(self.srv, "/api/tags/programming")
        for t in ["languages", "lisp", "sx", "databases", "lmdb", "logic", "datalog", "http"]:
            self.assertIn(t, programming["under"])
        self.assertNotIn("bread", programming["under"])

        def slugs(d):
            return {p["slug"] for p in d["posts"]}

        # a post tagged datalog shows on every page above it
        self.assertTrue(slugs(datalog))
        for above in (logic, databases, programming, api(self.srv, "/api/tags/science")):
            self.assertLessEqual(slugs(datalog), slugs(above))
        # and exactly the posts tagged with a tag under it
        every = api(self.srv, "/api/posts?page=1")["total"]
        posts = []
        for page in range(1, every // 20 + 2):
            posts += api(self.srv, "/api/posts?page=%d" % page)["posts"]
        want = {p["slug"] for p in posts if set(p["tags"]) & set(["logic"] + logic["under"])}
        self.assertEqual(slugs(logic), want)
        html = self.page("/tags/logic")
        self.assertIn("%d posts tagged logic" % len(want), html)
        for s in want:
            self.assertIn('href="/posts/%s"' % s, html)
        self.assertIn("There is no tag", self.page("/tags/nope", status=404))
        r = self.srv.get("/api/tags/nope")
        self.assertEqual((r.status, json.loads(r.text)), (404, {"error": "no such tag"}))

    def test_tags_page_shows_the_tree_with_counts(self):
        html = self.page("/tags")
        self.assertRegex(html, r"3\d tags")
        for root in ("programming", "science", "life"):
            count = len(api(self.srv, "/api/tags/" + root)["posts"])
            self.assertIn('href="/tags/%s">%s</a><span class="count">%d</span>' % (root, root, count),
                          html)
        self.assertIn('href="/tags/bread">bread</a><span class="count">', html)
        self.assertIn("also under chemistry", html)
        # four levels: programming > systems > databases > lmdb
        self.assertRegex(html, r"/tags/programming.*<ul class=\"tree\">.*/tags/systems.*"
                               r"<ul class=\"tree\">.*/tags/databases.*<ul class=\"tree\">.*/tags/lmdb")

    def test_form_validation_writes_nothing(self):
        before = api(self.srv, "/api/posts")
        cases = [
            (form(title="", body="", tags=""),
             ["The title is missing.", "The text is missing.", "Give at least one tag."]),
            (form(title="x" * 201, body="b", tags="sx"), ["The title is longer than 200 characters."]),
            (form(title="ok", body="b", tags="Bad Tag, <b>"),
             ["The tag &quot;bad tag&quot; may only use", "The tag &quot;&lt;b&gt;&quot; may only use"]),
            (form(title="ok", body="b", tags="a,b,c,d,e,f,g,h,i"), ["Give at most 8 tags."]),
            (b"", ["The title is missing."]),
        ]
        for body, messages in cases:
            r = post_form(self.srv, body)
            self.assertEqual(r.status, 400, (body, r))
            self.assertEqual(r.headers.get("content-type"), "text/html; charset=utf-8")
            self.assertIn('<ul class="errors">', r.text)
            valid_html5(self, r.text, "the form with errors")
            for m in messages:
                self.assertIn(m, r.text, body)
        self.assertEqual(api(self.srv, "/api/posts"), before)
        self.assertNotIn("/tags/bad", self.page("/tags"))
        # the form keeps what was typed, escaped
        r = post_form(self.srv, form(title="<i>keep</i>", body="", tags="sx"))
        self.assertIn('value="&lt;i&gt;keep&lt;/i&gt;"', r.text)

    def test_hostile_title_is_escaped_everywhere(self):
        r = post_form(self.srv, form(title=HOSTILE_TITLE, body=HOSTILE_BODY, tags="sx, hostile-tag"))
        self.assertEqual(r.status, 303, r)
        loc = r.headers.get("location")
        self.assertRegex(loc, r"^/posts/script-alert-t-script-q-title-\d+$")
        esc = "&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt; &amp; &#39;q&#39; &lt;/title&gt;"
        pages = [self.page(loc), self.page("/"), self.page("/tags/sx"), self.page("/tags/lisp"),
                 self.page("/tags/hostile-tag")]
        for html in pages:
            self.assertIn(esc, html)
            self.assertNotIn("<script>", html)
            self.assertNotIn("<img", html)
            self.assertEqual(html.count("</title>"), 1)
        self.assertIn("<title>%s · sxpool blog</title>" % esc, pages[0])
        self.assertIn("<p>&lt;img src=x onerror=alert(1)&gt;</p>", pages[0])
        self.assertIn("<p>second &amp; &quot;para&quot;</p>", pages[0])
        post = api(self.srv, "/api" + loc)
        self.assertEqual((post["title"], post["body"], post["tags"]),
                         (HOSTILE_TITLE, HOSTILE_BODY, ["sx", "hostile-tag"]))
        self.assertEqual(api(self.srv, "/api/posts")["posts"][0]["slug"], loc.split("/")[-1])
        # a new tag is a root of the tree
        self.assertIn('href="/tags/hostile-tag">hostile-tag</a><span class="count">1</span>',
                      self.page("/tags"))

    def test_methods_and_unknown_paths(self):
        r = self.srv.request("DELETE", "/posts")
        self.assertEqual((r.status, r.headers.get("allow")), (405, "POST"), r)
        self.assertIn("There is no page at /nope.", self.page("/nope", status=404))
        self.page("/api/nope", status=404, ctype="application/json")


def same_date(html):
    return re.sub(r"\d{4}-\d\d-\d\d", "DATE", html)


class SameOnEveryTier(sxtest.unittest.TestCase):
    def test_cek_and_jit_workers_serve_the_same_bytes(self):
        cek = sxtest.Server(app=BLOG, workers=0, cek_workers=1)
        # with a JIT worker up, the CEK worker serves nothing (README); that
        # the answers came from native code is checked through /api/runtime
        jit = sxtest.Server(app=BLOG, workers=1, cek_workers=1, args=["--jit-threshold=2"])
        with cek, jit:
            for srv in (cek, jit):
                r = post_form(srv, form(title=HOSTILE_TITLE, body=HOSTILE_BODY, tags="sx,new"))
                self.assertEqual(r.status, 303, r)
            seeded = json.loads(cek.get("/api/posts?page=15").text)["posts"][-1]["slug"]
            pages = PAGES + [r.headers.get("location"), "/tags/new", "/api/tags/new",
                             "/posts/" + seeded, "/api/posts/" + seeded]
            # warm up: every page again and again, until the functions the
            # pages run most are native (compiles run in the background)
            def warm():
                for p in pages:
                    jit.get(p, timeout=30)
                stats = json.loads(jit.get("/api/runtime").text)
                return stats["compiled"] >= 40 and stats["native-calls"] > 0
            sxtest.wait_until(warm, 180, interval=0.2, what="40 functions compiled in the JIT worker")
            self.assertEqual(json.loads(cek.get("/api/runtime").text)["native-calls"], 0)
            for p in pages:
                a, b = cek.get(p), jit.get(p)
                self.assertEqual((a.status, a.headers.get("content-type")),
                                 (b.status, b.headers.get("content-type")), p)
                self.assertEqual(same_date(a.text), same_date(b.text), p)
            stats = json.loads(jit.get("/api/runtime").text)
            self.assertGreaterEqual(stats["compiled"], 40, stats)
            self.assertEqual(stats["failed"], 0, stats)


if __name__ == "__main__":
    sxtest.main()
