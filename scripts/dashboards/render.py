#!/usr/bin/env python3
"""Renders a Grafana dashboard to one static HTML page, with real data from Prometheus.

    scripts/dashboards/render.py --prometheus http://127.0.0.1:9090 \
        --dashboard deploy/monitoring/dashboards/postgresql.json --var service=pg \
        --range 10m --out /tmp/pg.html [--png docs/images/dashboard-postgresql.png]

No Grafana needed (docs/monitoring.md, "Dashboards"): the template variables are substituted as
Grafana would (`$var`, `${var}`, `${var:regex}`, `[[var]]`; a multi-value or All variable
becomes a regex; `$__rate_interval`, `$__interval`, `$__range`), every panel's targets go to
Prometheus' `/api/v1/query_range` (`/api/v1/query` for a target marked instant), and the page
is laid out on the dashboard's 24-column grid: time series as inline SVG line charts (legend
from `legendFormat`, y axis in the panel's unit), stat panels as big numbers, rows as headings,
in Grafana's dark theme. Python 3 standard library only. With `--png`, headless Chromium takes
a screenshot of the page (it must be installed: `apt-get install chromium`;
scripts/dashboard-screenshot.sh does that).

A variable not given with `--var name=value[,value…]` takes its dashboard default: All where
the variable has it, else the first value its `label_values(…)` query finds in Prometheus.
Each panel's outcome (series found, no data, or the query's error) is printed on stderr;
`--strict` makes a query error (not an empty answer) fail the run.
"""

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request


# The drawing half: the theme, units, and panels as HTML and SVG.
from draw import *  # noqa: F401,F403

DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text):
    """`10m`, `1h30m`, `90s` → seconds."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 10m, 1h30m, 90s)")
    return sum(float(n) * UNIT_SECONDS[u] for n, u in parts)


def prom_duration(seconds):
    """Seconds → Prometheus' duration syntax (whole seconds, or ms below one)."""
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    seconds = int(round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


NICE_INTERVALS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300,
                  600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800]


def round_interval(seconds):
    """The nice interval nearest above `seconds`, as Grafana rounds `$__interval`."""
    for n in NICE_INTERVALS:
        if n >= seconds:
            return n
    return NICE_INTERVALS[-1]


def parse_end(text):
    if text in (None, "", "now"):
        return time.time()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def describe_range(seconds):
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"Last {n} {unit if n != 1 else unit[:-1]}"
    parts, rest = [], int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "Last " + "".join(parts)


# ---------------------------------------------------------------------------------------------
# Prometheus

class Prometheus:
    def __init__(self, url, timeout):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.queries = 0

    def get(self, path, params):
        query = urllib.parse.urlencode(params, doseq=True)
        req = urllib.request.Request(f"{self.url}{path}?{query}", headers={"Accept": "application/json"})
        self.queries += 1
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as e:
            try:
                body = json.load(e)
            except ValueError:
                raise RuntimeError(f"HTTP {e.code} from {path}") from None
        except (urllib.error.URLError, OSError) as e:
            raise SystemExit(f"render-dashboard: cannot reach Prometheus at {self.url}: {e}")
        if body.get("status") != "success":
            raise RuntimeError(f"{body.get('errorType', 'error')}: {body.get('error', 'no error given')}")
        return body["data"]

    def query_range(self, expr, start, end, step):
        data = self.get("/api/v1/query_range", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": prom_duration(step)})
        if data.get("resultType") != "matrix":
            raise RuntimeError(f"expected a matrix, got {data.get('resultType')}")
        return data["result"]

    def query(self, expr, at):
        data = self.get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        if data.get("resultType") == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        if data.get("resultType") != "vector":
            raise RuntimeError(f"expected a vector, got {data.get('resultType')}")
        return data["result"]

    def label_values(self, label, match, start, end):
        params = {"start": f"{start:.3f}", "end": f"{end:.3f}"}
        if match:
            params["match[]"] = match
        return self.get(f"/api/v1/label/{urllib.parse.quote(label)}/values", params)


# ---------------------------------------------------------------------------------------------
# Template variables

VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]|\$(\w+)")
REGEX_SPECIAL = re.compile(r"([\\^$.|?*+()\[\]{}])")


def regex_escape(value):
    return REGEX_SPECIAL.sub(r"\\\1", value)


def interpolate(text, values):
    """Replaces the variables Grafana would; unknown names (`$1` of label_replace) stay."""
    def repl(m):
        name = m.group(1) or m.group(3) or m.group(4)
        if name not in values:
            return m.group(0)
        value = values[name]
        if isinstance(value, list):  # the raw values of a multi-value variable
            fmt = m.group(2) or "regex"
            if fmt == "pipe":
                return "|".join(value)
            if fmt == "csv":
                return ",".join(value)
            return value[0] if len(value) == 1 else "(" + "|".join(value) + ")"
        return value
    return VARIABLE.sub(repl, text)


def variable_query(var):
    q = var.get("query")
    if isinstance(q, dict):
        q = q.get("query", "")
    return q or var.get("definition", "") or ""


def resolve_variables(dashboard, given, prom, start, end):
    """The value of each template variable (what `--var` gave, else the dashboard's default), and
    (label, shown value) pairs for the page's header."""
    values, shown = {}, []
    for var in dashboard.get("templating", {}).get("list", []):
        name, kind = var["name"], var.get("type", "query")
        if kind == "datasource":
            shown.append((var.get("label") or name, given.get(name, "Prometheus")))
            continue
        multi_like = bool(var.get("multi") or var.get("includeAll"))
        current = (var.get("current") or {}).get("value")
        current = [c for c in (current if isinstance(current, list) else [current]) if c not in (None, "")]
        if name in given:
            chosen = given[name].split(",") if multi_like else [given[name]]
        elif kind in ("constant", "textbox"):
            chosen = [str(variable_query(var))]
        elif kind in ("interval", "custom"):
            chosen = current or [variable_query(var).split(",")[0].strip()]
        else:
            chosen = current
        options = None
        if kind == "query" and not chosen:
            options = query_variable_options(var, values, prom, start, end)
            chosen = ["$__all"] if var.get("includeAll") else options[:1]
        if chosen in (["$__all"], ["All"]):
            label = "All"
            if var.get("allValue") is not None:
                value = var["allValue"]
            else:
                if options is None and kind == "query":
                    options = query_variable_options(var, values, prom, start, end)
                value = "(" + "|".join(regex_escape(o) for o in options) + ")" if options else ".*"
        elif not chosen:
            label, value = "(none)", ""
        elif multi_like:
            label, value = " + ".join(chosen), [regex_escape(c) for c in chosen]
        else:
            label = value = chosen[0]
        values[name] = value
        if var.get("hide", 0) != 2:
            shown.append((var.get("label") or name, label))
    return values, shown


LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.*?)\s*,\s*)?(\w+)\s*\)\s*$", re.S)


def query_variable_options(var, values, prom, start, end):
    query = interpolate(variable_query(var), values)
    m = LABEL_VALUES.match(query)
    if not m:
        print(f"render-dashboard: variable {var['name']}: only label_values(...) queries are resolved; give it with --var", file=sys.stderr)
        return []
    match, label = m.group(1), m.group(2)
    try:
        options = prom.label_values(label, match, start, end)
    except RuntimeError as e:
        print(f"render-dashboard: variable {var['name']}: {e}", file=sys.stderr)
        return []
    if var.get("regex"):
        rx = re.compile(var["regex"])
        options = [o for o in options if rx.search(o)]
    return sorted(options)


# ---------------------------------------------------------------------------------------------
# Panels' data


def fetch_panel(panel, values, prom, start, end, page_width, scrape, rate_override):
    """The panel's series: [(name, [(t, v)…])…], and an error text or None."""
    width_px = max(100, panel["gridPos"]["w"] * page_width / GRID_COLUMNS)
    step = max(scrape, round_interval((end - start) / width_px))
    if panel.get("interval"):
        step = max(step, parse_duration(interpolate(panel["interval"], values).lstrip(">")))
    rate = rate_override or max(step + scrape, 4 * scrape)
    builtins = {
        "__interval": prom_duration(step), "__interval_ms": str(int(step * 1000)),
        "__rate_interval": prom_duration(rate),
        "__range": prom_duration(end - start), "__range_s": str(int(end - start)), "__range_ms": str(int((end - start) * 1000)),
    }
    series, errors = [], []
    for target in panel.get("targets", []):
        if target.get("hide") or not target.get("expr"):
            continue
        expr = interpolate(target["expr"], {**values, **builtins})
        instant = target.get("instant") and not target.get("range")
        try:
            result = prom.query(expr, end) if instant else prom.query_range(expr, start, end, step)
        except RuntimeError as e:
            errors.append(f"{target.get('refId', '?')}: {e}")
            continue
        for r in result:
            points = [(float(t), to_float(v)) for t, v in ([r["value"]] if instant else r["values"])]
            series.append((legend_of(target.get("legendFormat"), r["metric"], expr), points))
    return series, ("; ".join(errors) or None), step


# ---------------------------------------------------------------------------------------------
# The page


def all_panels(dashboard):
    """Panels in order, the panels of collapsed rows included after their row."""
    for p in dashboard.get("panels", []):
        yield p
        if p.get("type") == "row" and p.get("collapsed"):
            yield from p.get("panels", [])


def render(args):
    with open(args.dashboard, encoding="utf-8") as f:
        dashboard = json.load(f)
    prom = Prometheus(args.prometheus, args.timeout)
    end = parse_end(args.end)
    start = end - args.range
    given = dict(args.var)
    values, shown = resolve_variables(dashboard, given, prom, start, end)

    page_width = args.width
    grid_width = page_width - 2 * PAD
    col = (grid_width + CELL_MARGIN) / GRID_COLUMNS
    unit_h = CELL_HEIGHT + CELL_MARGIN
    blocks, report = [], []
    bottom = 0
    for panel in all_panels(dashboard):
        g = panel.get("gridPos", {"x": 0, "y": 0, "w": 24, "h": 8})
        x, y = g["x"] * col, g["y"] * unit_h
        w, h = g["w"] * col - CELL_MARGIN, g["h"] * unit_h - CELL_MARGIN
        bottom = max(bottom, y + h)
        title = interpolate(panel.get("title", ""), values)
        if panel.get("type") == "row":
            blocks.append(f'<div class="row" style="left:{x:.0f}px;top:{y:.0f}px;width:{w:.0f}px">{esc(title)}</div>')
            continue
        kind = panel.get("type")
        if kind not in ("timeseries", "stat", "graph"):
            blocks.append(panel_box(x, y, w, h, title, f'<div class="error" style="color:{TEXT_WEAK}">{esc(kind)} panels are not rendered</div>'))
            report.append((title, f"skipped ({kind})"))
            continue
        series, error, step = fetch_panel(panel, values, prom, start, end, page_width, args.scrape_interval, args.rate_interval)
        body_w, body_h = w - 16, h - 32 - 6
        if kind == "stat":
            body = stat_html(panel, series, body_w, body_h)
        else:
            body = timeseries_svg(panel, series, start, end, step, body_w, body_h - (18 if error else 0))
        if error:
            body = f'<div class="error">{esc(error)}</div>' + body
        blocks.append(panel_box(x, y, w, h, title, body))
        if series:
            outcome = f"{len(series)} series" + (f" (error: {error})" if error else "")
        else:
            outcome = f"error: {error}" if error else "no data"
        report.append((title, outcome))

    grid_h = bottom + CELL_MARGIN
    page_h = int(HEADER_HEIGHT + grid_h + FOOTER_HEIGHT)
    t_end = dt.datetime.fromtimestamp(end).astimezone()
    t_start = dt.datetime.fromtimestamp(start).astimezone()
    tz = t_end.strftime("%Z") or t_end.strftime("%z")
    range_text = f"{describe_range(args.range)} · {t_start:%Y-%m-%d %H:%M:%S} to {t_end:%H:%M:%S} {tz}"
    rate = prom_duration(args.rate_interval) if args.rate_interval else "max(4 × scrape interval, step + scrape interval)"
    footer = (f"Static render of {os.path.basename(args.dashboard)} (uid {dashboard.get('uid', '-')}) by scripts/dashboards/render.py: "
              f"{prom.queries} queries to {args.prometheus}, step per panel from its width, $__rate_interval {rate}.")
    vars_html = "".join(f'<div class="var"><span class="k">{esc(k)}</span><span class="v">{esc(v)}</span></div>' for k, v in shown)
    title = dashboard.get("title", "Dashboard")
    crumb, _, leaf = title.rpartition(" / ")
    title_html = (f'<span class="crumb">{esc(crumb)} /</span> {esc(leaf)}' if crumb else esc(title))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<meta name="generator" content="scripts/dashboards/render.py"><style>{CSS}</style></head>
<body style="width:{page_width}px">
<div class="header">
  <div class="title">{title_html}<span class="range">{esc(range_text)}</span></div>
  <div class="vars">{vars_html}</div>
</div>
<div class="grid" style="height:{grid_h:.0f}px">
{chr(10).join(blocks)}
</div>
<div class="footer">{esc(footer)}</div>
</body></html>
"""
    return page, page_h, report


def screenshot(html_path, png_path, width, height, chromium):
    binary = chromium or next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if not binary:
        raise SystemExit("render-dashboard: no Chromium found (apt-get install chromium, or --chromium PATH)")
    with tempfile.TemporaryDirectory(prefix="render-dashboard-") as profile:
        cmd = [binary, "--headless", "--disable-gpu", "--hide-scrollbars", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-default-apps", "--mute-audio", f"--user-data-dir={profile}",
               f"--window-size={width},{height}", f"--screenshot={os.path.abspath(png_path)}",
               "file://" + os.path.abspath(html_path)]
        if os.geteuid() == 0:
            cmd.insert(2, "--no-sandbox")
        if os.path.exists(png_path):
            os.remove(png_path)
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if not os.path.exists(png_path):
        raise SystemExit(f"render-dashboard: Chromium wrote no screenshot (exit {run.returncode}):\n{run.stderr[-2000:]}")


def parse_var(text):
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--var takes name=value, not {text!r}")
    return name, value


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--prometheus", required=True, help="Prometheus' base URL, e.g. http://127.0.0.1:9090")
    ap.add_argument("--dashboard", required=True, help="a Grafana dashboard JSON file")
    ap.add_argument("--var", type=parse_var, action="append", default=[], metavar="NAME=VALUE[,VALUE…]",
                    help="a template variable's value (repeatable; a multi-value variable takes several, comma-separated; All for all)")
    ap.add_argument("--range", type=parse_duration, default=parse_duration("1h"), help="time range ending at --end (default 1h)")
    ap.add_argument("--end", default="now", help="end of the range: now (default), Unix seconds or ISO 8601")
    ap.add_argument("--scrape-interval", type=parse_duration, default=parse_duration("15s"),
                    help="the data source's scrape interval, the least step and a quarter of $__rate_interval's least (default 15s, Grafana's)")
    ap.add_argument("--rate-interval", type=parse_duration, default=None, help="use this for $__rate_interval instead of Grafana's rule")
    ap.add_argument("--width", type=int, default=1600, help="page width in pixels (default 1600)")
    ap.add_argument("--timeout", type=float, default=30, help="seconds per Prometheus request (default 30)")
    ap.add_argument("--out", required=True, help="the HTML file to write")
    ap.add_argument("--png", help="also take a screenshot of the page with headless Chromium, into this PNG file")
    ap.add_argument("--chromium", help="the Chromium binary (default: chromium, chromium-browser or google-chrome on PATH)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a query fails (an empty answer is not a failure)")
    args = ap.parse_args()

    page, page_h, report = render(args)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(page)
    failed = False
    for title, outcome in report:
        print(f"  {title}: {outcome}", file=sys.stderr)
        failed |= outcome.startswith("error")
    print(f"render-dashboard: wrote {args.out} ({args.width}x{page_h})", file=sys.stderr)
    if args.png:
        screenshot(args.out, args.png, args.width, page_h, args.chromium)
        print(f"render-dashboard: wrote {args.png}", file=sys.stderr)
    if failed and args.strict:
        sys.exit(1)


if __name__ == "__main__":
    main()
