#!/usr/bin/env python3
"""Checks a live Prometheus through its HTTP API, for scripts/check-monitoring.sh (standard library only).

    monitoring_check.py targets URL COUNT TIMEOUT        every active target up, and COUNT of them
    monitoring_check.py rules URL TIMEOUT                every rule evaluated, none with an error
    monitoring_check.py panels URL DASHBOARD TIMEOUT     every panel query of a Grafana dashboard answers data
    monitoring_check.py alert URL NAME TIMEOUT [L=V ...] the alert fires (with those labels) within TIMEOUT
    monitoring_check.py value URL EXPR                   prints an instant query's result
    monitoring_check.py positive URL EXPR TIMEOUT        waits until some series of EXPR is above 0
    monitoring_check.py post URL JSON                    POSTs JSON (devchain's control endpoints)

Each waits at most TIMEOUT seconds, prints what it saw, and exits 1 with the reason on failure.
"""
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def get(base, path, params=None):
    url = base.rstrip("/") + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:  # Prometheus answers a bad query with 400 and a JSON error
        return json.load(e)


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def wait(timeout, check):
    """Calls check() until it returns (True, text) or timeout seconds pass; returns the last text."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ok, text = check()
        except (OSError, ValueError) as e:  # not listening yet, or a half-written answer
            ok, text = False, "no answer: %s" % e
        if ok or time.monotonic() > deadline:
            return ok, text
        time.sleep(1)


def targets(base, count, timeout):
    def check():
        active = get(base, "/api/v1/targets")["data"]["activeTargets"]
        lines = ["%-18s %-22s %s%s" % (t["labels"].get("job"), t["labels"].get("instance"), t["health"],
                                       (" (" + t["lastError"] + ")") if t.get("lastError") else "") for t in active]
        ok = len(active) == count and all(t["health"] == "up" for t in active)
        return ok, "\n".join(sorted(lines))
    ok, text = wait(timeout, check)
    print(text)
    if not ok:
        fail("not every one of the %d scrape targets is up within %d s" % (count, timeout))
    print("all %d targets up" % count)


def rules(base, timeout):
    def check():
        groups = get(base, "/api/v1/rules")["data"]["groups"]
        all_rules = [r for g in groups for r in g["rules"]]
        bad = [r for r in all_rules if r["health"] == "err"]
        unknown = [r for r in all_rules if r["health"] == "unknown"]
        text = "%d rules: %d ok, %d not evaluated yet, %d with errors" % (
            len(all_rules), len(all_rules) - len(bad) - len(unknown), len(unknown), len(bad))
        for r in bad:
            text += "\n  %s: %s" % (r["name"], r.get("lastError"))
        return (not unknown and not bad and all_rules) or bool(bad), (text, bad, all_rules)
    _, (text, bad, all_rules) = wait(timeout, check)
    print(text)
    if not all_rules:
        fail("Prometheus loaded no rules")
    if bad:
        fail("%d rule(s) evaluate with an error" % len(bad))
    if any(r["health"] != "ok" for r in all_rules):
        fail("not every rule was evaluated within %d s" % timeout)


def panel_queries(dashboard):
    """(panel title, expr) for every target of every panel, rows' nested panels included."""
    out = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((p.get("title", "?"), t["expr"]))
    walk(dashboard.get("panels", []))
    return out


def panels(base, path, timeout):
    with open(path) as f:
        dashboard = json.load(f)
    queries = panel_queries(dashboard)
    if not queries:
        fail("%s has no panel queries" % path)
    # Grafana's own variables, as Grafana would fill them for a short time range.
    subst = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}
    deadline = time.monotonic() + timeout
    pending = list(queries)
    answers = {}
    while pending:
        still = []
        for title, expr in pending:
            q = expr
            for k, v in subst.items():
                q = q.replace(k, v)
            answer = get(base, "/api/v1/query", {"query": q})
            answers[(title, expr)] = answer
            if answer.get("status") != "success" or not answer["data"]["result"]:
                still.append((title, expr))
        pending = still
        if pending and time.monotonic() < deadline:
            time.sleep(1)
        else:
            break
    for title, expr in queries:
        a = answers[(title, expr)]
        if a.get("status") != "success":
            state = "ERROR " + a.get("error", "?")
        elif not a["data"]["result"]:
            state = "EMPTY"
        else:
            state = "%d series" % len(a["data"]["result"])
        print("  %-44s %-12s %s" % (title[:44], state, expr))
    if pending:
        fail("%d of %d panel queries error or return nothing" % (len(pending), len(queries)))
    print("all %d panel queries of %s answer data" % (len(queries), path))


def alert(base, name, timeout, labels):
    def check():
        firing = [a for a in get(base, "/api/v1/alerts")["data"]["alerts"] if a["state"] == "firing"]
        match = [a for a in firing if a["labels"].get("alertname") == name
                 and all(a["labels"].get(k) == v for k, v in labels.items())]
        names = sorted({"%s%s" % (a["labels"]["alertname"], {k: v for k, v in a["labels"].items()
                                                              if k in ("stage", "chain", "job", "instance", "merchant_id")})
                        for a in firing})
        return bool(match), (match, names)
    started = time.monotonic()
    ok, (match, names) = wait(timeout, check)
    if not ok:
        print("firing: " + (", ".join(names) or "nothing"))
        fail("%s%s did not fire within %d s" % (name, labels or "", timeout))
    print("%s%s firing after %.0f s: %s" % (name, labels or "", time.monotonic() - started, match[0]["annotations"].get("summary")))


def value(base, expr):
    answer = get(base, "/api/v1/query", {"query": expr})
    if answer.get("status") != "success":
        fail("%s: %s" % (expr, answer.get("error")))
    for r in answer["data"]["result"]:
        print("  %s %s" % (r["metric"], r["value"][1]))


def positive(base, expr, timeout):
    def check():
        answer = get(base, "/api/v1/query", {"query": expr})
        result = answer.get("data", {}).get("result", [])
        return any(float(r["value"][1]) > 0 for r in result), result
    ok, result = wait(timeout, check)
    for r in result:
        print("  %s %s" % (r["metric"], r["value"][1]))
    if not ok:
        fail("no series of %s above 0 within %d s" % (expr, timeout))


def post(url, body):
    request = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        print(r.read().decode()[:200])


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        sys.exit(2)
    cmd, base = argv[1], argv[2]
    if cmd == "targets":
        targets(base, int(argv[3]), int(argv[4]))
    elif cmd == "rules":
        rules(base, int(argv[3]))
    elif cmd == "panels":
        panels(base, argv[3], int(argv[4]))
    elif cmd == "alert":
        labels = dict(a.split("=", 1) for a in argv[5:])
        alert(base, argv[3], int(argv[4]), labels)
    elif cmd == "value":
        value(base, argv[3])
    elif cmd == "positive":
        positive(base, argv[3], int(argv[4]))
    elif cmd == "post":
        post(base, argv[3])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
